"""Render the zero-shot sections of docs/RESULTS.md from the JSON the zsrec commands wrote.

Run after any of the result commands listed in docs/RESULTS.md:
`.venv/bin/python docs/analysis/render_results.py` (rewrites everything from the
"leave one domain out" section to the end; the sections above it are written by hand).
"""
import json, os

import numpy as np
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
R = f"{DOCS}/results/"
def J(n):
    p = R + n
    return json.load(open(p)) if os.path.exists(p) else None
def by_target(d):
    return {r["target"]: {**{x["model"]: x for x in r["rows"]}, "_r": r} for r in d["results"]} if d else {}
f4 = lambda v: "n/m" if v is None else f"{v:.4f}"
order = ["ml-100k", "lastfm", "douban-movie", "ml-1m", "yelp", "amazon-sports", "epinions", "amazon-book"]
lg = {}
for n in ("baselines_paper5.json", "baselines_epinions.json"):
    d = J(n)
    items = d if isinstance(d, list) else d.get("results", [])
    for row in items:
        if row.get("model") == "lightgcn":
            lg[row["dataset"]] = row["ndcg@20"]
lg["ml-100k"] = 0.3414  # README quick-start baselines (L2 1e-3)
for t in ("lastfm", "amazon-book"):  # `zsrec baselines --datasets <t> --models lightgcn` (L2 1e-3)
    d = J(f"baselines_lightgcn_{t}.json")
    if d:
        lg[t] = d["results"][0]["ndcg@20"]
lg_missing = [t for t in order if t not in lg]
pair, paper = by_target(J("loo8_pair_spectral.json")), by_target(J("loo8_paper_spectral.json"))
pair_n, paper_n = by_target(J("loo8_pair_node2vec.json")), by_target(J("loo8_paper_node2vec.json"))
out = []
W = out.append
W("""## Zero-shot: leave one domain out over all eight datasets

For each target, the ranker is pretrained on the seven other datasets and ranks the target's
test items with nothing trained on the target; MostPop and ItemKNN are fitted on the target's
training split, LightGCN is trained on it (in-domain, from the baselines tables: L2 1e-4 on the
five paper datasets, 1e-3 on the others""" + (f"; not run on {' and '.join(lg_missing)}" if lg_missing else "") + """). Both
co-occurrence backends (spectral, the default, and node2vec), feature graph 80 %, pretraining
budget of `configs/results_loo.yaml` (at most 10 epochs, patience 3, 1,000 sampled users per
source and epoch, 300 validation users per source).

```bash
for b in spectral node2vec; do for m in pair paper; do
  zsrec -v zeroshot --config configs/results_loo.yaml --model $m --backend $b \\
      --leave-one-out ml-100k,lastfm,douban-movie,ml-1m,yelp,amazon-sports,epinions,amazon-book \\
      --output docs/results/loo8_${m}_${b}.json
done; done
```

Test NDCG@20 (full ranking, training and validation items masked); the ratios are the pair
model's with the default spectral backend:

| target | MostPop | ItemKNN (fitted on target) | LightGCN (trained on target) | paper model, spectral | paper model, node2vec | pair model, spectral | pair model, node2vec | pair / MostPop | pair / ItemKNN |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|""")
ratios_pop, ratios_knn = [], []
for t in order:
    p, q = pair.get(t, {}), paper.get(t, {})
    base = p if "mostpop" in p else q
    mp, ik = base["mostpop"]["ndcg@20"], base["itemknn"]["ndcg@20"]
    pr = p.get("pretrained-pair", {}).get("ndcg@20")
    pa = q.get("pretrained-paper", {}).get("ndcg@20")
    prn = pair_n.get(t, {}).get("pretrained-pair", {}).get("ndcg@20")
    pan = paper_n.get(t, {}).get("pretrained-paper", {}).get("ndcg@20")
    if pr is not None:
        ratios_pop.append((t, pr / mp)); ratios_knn.append((t, pr / ik))
        W(f"| {t} | {mp:.4f} | {ik:.4f} | {f4(lg.get(t))} | {f4(pa)} | {f4(pan)} | **{pr:.4f}** | {f4(prn)} | "
          f"{pr / mp:.1f}x | {pr / ik:.2f}x |")
    else:
        W(f"| {t} | {mp:.4f} | {ik:.4f} | {f4(lg.get(t))} | {f4(pa)} | {f4(pan)} | not finished | {f4(prn)} | | |")
walls_p = {t: round(pair[t]["_r"]["wall_s"]) for t in pair}
walls_q = {t: round(paper[t]["_r"]["wall_s"]) for t in paper}
wall_list = lambda res: ", ".join(f"{t} {round(r['_r']['wall_s'])} s" for t, r in res.items())
n2v_walls = ((" node2vec backend (features from the cache, filled beforehand; each target run on its own, two "
              "at a time on the two cores, one thread each): pair model " + wall_list(pair_n) if pair_n else "") +
             ("; paper model " + wall_list(paper_n) if paper_n else "") + ("." if pair_n or paper_n else ""))
W("")
first4 = ["ml-100k", "lastfm", "douban-movie", "ml-1m"]
later = [t for t in walls_p if t not in first4]
W(f"Wall time per target (pretraining on seven sources, featurization from the cache, evaluation): "
  f"pair model {', '.join(f'{t} {walls_p[t]} s' for t in first4 if t in walls_p)} on a machine shared "
  f"with other jobs (the douban-movie run paused for about 6 minutes and the ml-1m run for 36 while "
  f"benchmarks ran; the first run also featurized all eight datasets, both graphs each, about 9 of its "
  f"1,018 s)" + (f"; {', '.join(f'{t} {walls_p[t]} s' for t in later)} in a later run, after the "
  f"neighbour lists and percentile ranks of the pair features were made faster (percentile ranks "
  f"bit-identical; neighbour lists now break ties between equal similarities differently, which "
  f"moves results slightly: the README quick start went from NDCG@20 0.1127 to 0.1120), with one "
  f"core while a second job used the other" if later else "") +
  f". Paper model {', '.join(f'{t} {s} s' for t, s in walls_q.items())}." +
  n2v_walls)

W("")
lg_ab = J("baselines_lightgcn_amazon-book.json")
if lg_ab:
    r = lg_ab["results"][0]
    W(f"LightGCN on amazon-book (`zsrec -v baselines --datasets amazon-book --models lightgcn --output "
      f"docs/results/baselines_lightgcn_amazon-book.json`): early-stopped after {r['epochs']} epochs (best "
      f"{r['best_epoch']}), {r['wall_s']:.0f} s on the two cores (about ten minutes of it beside the test "
      f"suite); it lands below ItemKNN on that dataset ({r['ndcg@20']:.4f} against "
      f"{pair['amazon-book']['itemknn']['ndcg@20']:.4f}).")
    W("")
import statistics
if ratios_pop:
    n_pop = sum(r >= 1.5 for _, r in ratios_pop)
    med_knn = statistics.median(r for _, r in ratios_knn)
    W(f"Targets (issue: >= 1.5x MostPop on every target, >= ItemKNN on the median target): the pair "
      f"model reaches >= 1.5x MostPop on {n_pop} of the {len(ratios_pop)} targets measured "
      f"({', '.join(f'{t} {r:.1f}x' for t, r in ratios_pop)}), and its median ratio to ItemKNN fitted "
      f"on the target is {med_knn:.2f} ({', '.join(f'{t} {r:.2f}' for t, r in ratios_knn)}).")
    W("")

# ---------------------------------------------------------------- LOO over the five paper datasets
p5 = by_target(J("loo5_paper_spectral.json"))
W("""## Zero-shot, paper-faithful model: leave one out over the five paper datasets

The paper's setting: node features only (activity, co-occurrence, interaction), two-tower MLP,
pretrained on four of Epinions, Yelp, MovieLens-1M, Douban and Amazon-Sports, evaluated on the
fifth. Same budget as above.

```bash
zsrec -v zeroshot --config configs/results_loo.yaml --model paper \\
    --leave-one-out epinions,yelp,ml-1m,douban-movie,amazon-sports --output docs/results/loo5_paper_spectral.json
```

| target | MostPop | ItemKNN (fitted on target) | paper model, zero-shot | x MostPop | wall s |
|---|---:|---:|---:|---:|---:|""")
for t, r in p5.items():
    W(f"| {t} | {r['mostpop']['ndcg@20']:.4f} | {r['itemknn']['ndcg@20']:.4f} | {r['pretrained-paper']['ndcg@20']:.4f} | "
      f"{r['pretrained-paper']['ndcg@20'] / r['mostpop']['ndcg@20']:.2f}x | {r['_r']['wall_s']:.0f} |")
W("""
(The command ran beside the eight-dataset pair run; 181 s in all.) The paper-faithful model
stays below MostPop on four of the five targets and above it only on Douban, whose 3000 x 3000
subset makes popularity nearly useless; this matches the eight-dataset table above.
""")
# ---------------------------------------------------------------- in-domain
ind = {n: J(f"indomain_{n}.json") for n in ("ml-1m_pair", "ml-1m_paper", "ml-1m_paper_long", "ml-1m_paper_bins50",
                                             "douban-movie_pair", "douban-movie_paper")}
def row(n):
    d = ind[n]
    r = d["results"][0]
    pre = r["rows"][0]
    return pre, {x["model"]: x for x in r["rows"]}, r
W("""## In-domain: pretrained on the target itself

The same rankers trained on the target's own training split (sources = target), evaluated on
its test split; the sanity check of the method (on ml-1m it must beat MostPop).

```bash
zsrec -v zeroshot --config configs/results_loo.yaml --target ml-1m --in-domain --model pair  # and --model paper, and douban-movie
zsrec zeroshot --config configs/results_indomain_paper.yaml          # paper model, default budget (40 epochs, 3000 users/epoch)
zsrec zeroshot --config configs/results_indomain_paper_bins50.yaml   # the same with 50 activity bins
```

| target | model (budget) | Recall@20 | NDCG@20 | x MostPop | x ItemKNN | epochs (best) | wall s |
|---|---|---:|---:|---:|---:|---|---:|""")
labels = {"ml-1m_pair": ("ml-1m", "pair model (LOO budget)"), "ml-1m_paper": ("ml-1m", "paper model (LOO budget)"),
          "ml-1m_paper_long": ("ml-1m", "paper model (default budget)"),
          "ml-1m_paper_bins50": ("ml-1m", "paper model (default budget, 50 activity bins)"),
          "douban-movie_pair": ("douban-movie", "pair model (LOO budget)"),
          "douban-movie_paper": ("douban-movie", "paper model (LOO budget)")}
for n, (t, lab) in labels.items():
    if ind[n] is None:
        continue
    pre, m, r = row(n)
    W(f"| {t} | {lab} | {pre['recall@20']:.4f} | {pre['ndcg@20']:.4f} | {pre['ndcg@20'] / m['mostpop']['ndcg@20']:.2f}x | "
      f"{pre['ndcg@20'] / m['itemknn']['ndcg@20']:.2f}x | {r['pretrain']['epochs']} ({r['pretrain']['best_epoch']}) | {r['wall_s']:.0f} |")
for t in ("ml-1m", "douban-movie"):
    m = row(f"{t}_pair")[1]
    W(f"| {t} | MostPop / ItemKNN / LightGCN (baselines) | | {m['mostpop']['ndcg@20']:.4f} / {m['itemknn']['ndcg@20']:.4f} / "
      f"{lg[t]:.4f} | | | | |")

long_ = row("ml-1m_paper_long")[0]["ndcg@20"]
W(f"""
**Sanity check and what we found.** The pair model passes it clearly: in-domain on ml-1m it
reaches NDCG@20 {row('ml-1m_pair')[0]['ndcg@20']:.4f}, 2.0x MostPop and above ItemKNN (0.2086) and LightGCN
(0.2133). The paper-faithful model does not: {row('ml-1m_paper')[0]['ndcg@20']:.4f} with the leave-one-out budget,
{long_:.4f} (0.97x MostPop) with the default budget. We checked the usual suspects. Leakage and
masking: the pair model, MostPop and ItemKNN go through the same split, the same feature code and
the same evaluator (checked against a brute-force reference in the tests), and the pair model's
numbers are in the range of the in-domain baselines, so the pipeline is not broken. Negative
sampling: negatives are uniform over the same domain's unseen items (tested). Features: every
item of ml-1m has a distinct node feature row (3,043 distinct rows for 3,043 items), so the model
is not blind to item identity by construction; but the information it can use is popularity and
co-occurrence *statistics*. Ranking ml-1m's items by their activity decile alone (random order
within a decile; `docs/analysis/feature_resolution.py`) gives NDCG@20 0.0346; exact popularity (MostPop) gives 0.1126; the model learns
something between the two, close to popularity, and cannot personalise beyond what a user's
activity and cluster statistics say. Finer activity bins (50 instead of 10) do not help
({row('ml-1m_paper_bins50')[0]['ndcg@20']:.4f}). Our reading: the node-feature two-tower model is, in effect, a learned
popularity model; it lands at or a little under MostPop in-domain and below it zero-shot. The
per-pair features are what lets a transferable model personalise.
""")
# ---------------------------------------------------------------- ablation, interpolation
abl, abl_in = J("ablation_zeroshot_douban.json"), J("ablation_indomain_ml-100k.json")
if abl or abl_in:
    W("""## Ablation

Each variant pretrains once and is evaluated like the full model: feature families switched off
in turn, activity only, each pair feature off, features computed on all training edges instead of
an 80 % feature graph (train as you infer), and the paper-faithful model.

```bash
zsrec -v ablation --config configs/results_ablation.yaml --output docs/results/ablation_zeroshot_douban.json
zsrec -v ablation --config configs/results_ablation.yaml --target ml-100k --in-domain --output docs/results/ablation_indomain_ml-100k.json
```
""")
    for title, d in (("Zero-shot, ml-100k + lastfm -> douban-movie", abl), ("In-domain, ml-100k", abl_in)):
        if not d:
            W(f"{title}: not measured yet.\n")
            continue
        full = next(r for r in d["rows"] if r["variant"] == "full")["ndcg@20"]
        W(f"{title} (test NDCG@20; change against the full model):\n")
        W("| variant | Recall@20 | NDCG@20 | vs full | x MostPop | best epoch |")
        W("|---|---:|---:|---:|---:|---:|")
        for r in d["rows"]:
            W(f"| {r['variant']} | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | {100 * (r['ndcg@20'] / full - 1):+.1f} % | "
              f"{r.get('x_mostpop', float('nan')):.1f}x | {r['best_epoch']} |")
        W("")
interp = J("interpolation_douban.json")
if interp:
    W("""## Interpolation

`score = alpha * z(pretrained) + (1 - alpha) * z(base)` per user (z-scored over all items), alpha
chosen on the target's validation split from {0, 0.1, ..., 1}; also alpha = 0.5 on raw scores.
The pretrained checkpoint is the quick start's (pair model, ml-100k + lastfm), the target Douban.

```bash
zsrec -v interpolate --config configs/results_ablation.yaml --load runs/checkpoints/zsrec.pt \\
    --bases lightgcn,bpr_mf --output docs/results/interpolation_douban.json
```

| base (trained on Douban) | base NDCG@20 | pretrained NDCG@20 | alpha (valid) | mixed NDCG@20 | change | raw 0.5 mix | change |
|---|---:|---:|---:|---:|---:|---:|---:|""")
    for r in interp["reports"]:
        W(f"| {r['base']} | {r['base_test']['ndcg@20']:.4f} | {r['pretrained_test']['ndcg@20']:.4f} | {r['alpha']:.1f} | "
          f"{r['interpolated_test']['ndcg@20']:.4f} | {100 * r['interpolated_test']['rel_ndcg@20']:+.1f} % | "
          f"{r['raw_half_test']['ndcg@20']:.4f} | {100 * r['raw_half_test']['rel_ndcg@20']:+.1f} % |")
    W("")
mat = J("matrix_pair_small4.json")
if mat:
    m = mat["matrix"]
    W("""## Source -> target matrix

The pair model pretrained on one dataset alone and evaluated on each (the diagonal is in-domain);
colour is the ratio to MostPop on the target.

```bash
zsrec -v zeroshot --config configs/results_loo.yaml --model pair --matrix ml-100k,lastfm,douban-movie,ml-1m \\
    --plot docs/source_target_heatmap.png --output docs/results/matrix_pair_small4.json
```

![source -> target](source_target_heatmap.png)
""")
    W("| source \\ target | " + " | ".join(m["datasets"]) + " |")
    W("|---|" + "---:|" * len(m["datasets"]))
    for src in [x for x in m["datasets"] if x in m["cells"]]:
        W(f"| {src} | " + " | ".join(f"{m['cells'][src][t]['ndcg@20']:.4f} ({m['cells'][src][t]['x_mostpop']:.1f}x)"
                                      for t in m["datasets"]) + " |")
    W("| MostPop | " + " | ".join(f"{m['mostpop'][t]:.4f}" for t in m["datasets"]) + " |")
    W(f"""
The source matters more than the distance between domains: ml-1m alone transfers best to every
target, above the in-domain diagonal (ml-1m -> ml-100k {m['cells']['ml-1m']['ml-100k']['ndcg@20']:.4f} against ml-100k's own
{m['cells']['ml-100k']['ml-100k']['ndcg@20']:.4f}; ml-1m -> Douban {m['cells']['ml-1m']['douban-movie']['ndcg@20']:.4f} against Douban's own
{m['cells']['douban-movie']['douban-movie']['ndcg@20']:.4f}), while Last.fm alone is a poor source everywhere, itself
included. The matrix covers the four smaller datasets ({m.get('wall_s', 438):.0f} s); the four large
ones are not in it yet.""")
    W("")
# ---------------------------------------------------------------- backends
small4 = ["ml-100k", "lastfm", "douban-movie", "ml-1m"]
bk = {(m, b): by_target(J(f"loo4_{m}_{b}.json")) for m in ("pair", "paper") for b in ("spectral", "node2vec")}
if any(bk.values()):
    W("""## Co-occurrence backend: spectral against node2vec

Leave one out over the four smaller datasets (each target pretrained on the other three), once
per backend and model, same budget as above (`configs/results_loo.yaml`); node2vec is pecanpy at
METHOD.md defaults with one thread (bit-reproducible), spectral the randomized SVD. The
co-occurrence embedding feeds the co-occurrence and interaction node features and the pair
cosine, so the backend touches both models.

```bash
for b in spectral node2vec; do for m in pair paper; do
  zsrec -v zeroshot --config configs/results_loo.yaml --model $m --backend $b \\
      --leave-one-out ml-100k,lastfm,douban-movie,ml-1m --output docs/results/loo4_${m}_${b}.json
done; done
```

Test NDCG@20:

| target | MostPop | ItemKNN (fitted on target) | paper, spectral | paper, node2vec | pair, spectral | pair, node2vec | pair: node2vec / spectral |
|---|---:|---:|---:|---:|---:|---:|---:|""")
    for t in small4:
        cells = {k: v.get(t, {}) for k, v in bk.items()}
        base = next((c for c in cells.values() if "mostpop" in c), None)
        if base is None:
            continue
        g = lambda m, b: cells[(m, b)].get(f"pretrained-{m}", {}).get("ndcg@20")
        ps, pn = g("pair", "spectral"), g("pair", "node2vec")
        W(f"| {t} | {base['mostpop']['ndcg@20']:.4f} | {base['itemknn']['ndcg@20']:.4f} | {f4(g('paper', 'spectral'))} | "
          f"{f4(g('paper', 'node2vec'))} | {f4(ps)} | {f4(pn)} | {f'{pn / ps:.2f}x' if ps and pn else ''} |")
    W("")
    walls = {k: sum(r["_r"]["wall_s"] for r in v.values()) for k, v in bk.items() if v}
    W("Wall time of each leave-one-out (four targets, featurization included when not cached): " +
      ", ".join(f"{m} model {b} {w:.0f} s" for (m, b), w in walls.items()) + ".")
    W("")
# ---------------------------------------------------------------- feature graph vs all edges, seeds
gf = {}
for seed, suffix in ((0, ""), (1, "_seed1"), (2, "_seed2")):
    a, b = by_target(J(f"loo4_pair_spectral{suffix}.json")), by_target(J(f"loo4_pair_spectral_allfeat{suffix}.json"))
    for t in small4:
        if t in a and t in b:
            gf[(seed, t)] = (a[t]["pretrained-pair"]["ndcg@20"], b[t]["pretrained-pair"]["ndcg@20"])
if gf:
    W("""## Train as you infer: 80 % feature graph against features on all training edges

The pair model's leave-one-out over the four smaller datasets with features computed on an 80 %
feature graph (BPR on the held-out 20 %, the default) or on all training edges (BPR on those same
edges), three seeds (each seed draws its own split, feature graph, negatives and initialisation).

```bash
for seed in 0 1 2; do
  zsrec -v zeroshot --config configs/results_loo.yaml --model pair --seed $seed \\
      --leave-one-out ml-100k,lastfm,douban-movie,ml-1m --output docs/results/loo4_pair_spectral_seed$seed.json
  zsrec -v zeroshot --config configs/results_loo.yaml --model pair --seed $seed --graph-frac 1.0 \\
      --leave-one-out ml-100k,lastfm,douban-movie,ml-1m --output docs/results/loo4_pair_spectral_allfeat_seed$seed.json
done
```

(Seed 0's files are `loo4_pair_spectral.json` and `loo4_pair_spectral_allfeat.json`.) Test NDCG@20:

| seed | target | 80 % feature graph | all edges | all edges / 80 % |
|---|---|---:|---:|---:|""")
    rel = []
    for (seed, t), (a, b) in sorted(gf.items()):
        rel.append(b / a)
        W(f"| {seed} | {t} | {a:.4f} | {b:.4f} | {b / a:.3f} |")
    wins = sum(r < 1 for r in rel)
    W(f"""
Over {len(rel)} (seed, target) pairs the 80 % feature graph scores higher in {wins}; the ratio
all-edges / 80 % ranges from {min(rel):.3f} to {max(rel):.3f} (geometric mean
{float(np.exp(np.mean(np.log(rel)))):.3f}).
""")
# ---------------------------------------------------------------- featurization times
import glob
from zsrec_ray.config import FeatureConfig
from zsrec_ray.features.featureset import config_hash

spec, n2v = {}, {}
default_hash = {config_hash(FeatureConfig()): spec, config_hash(FeatureConfig(backend="node2vec")): n2v}
for mf in glob.glob(os.path.expanduser("~/.cache/zsrec/features/*/manifest.json")):
    m = json.load(open(mf))
    into = default_hash.get(Path(mf).parent.name.rsplit("-", 1)[-1])
    if into is not None:  # the default feature config of either backend, any split or graph
        into.setdefault(m["domain"], []).append(m["timings"])
# node2vec on the large datasets: bench/featurize.py runs (docs/BENCHMARKS.md), not the cache
bench_n2v = {"ml-1m": "68.3 (1 thread)", "amazon-book": "648.0 (2 threads)"}
W("""## Featurization time per backend

Stage timings recorded in each feature set's manifest by the leave-one-out runs above (two graphs
per dataset: the 80 % feature graph and the full training split; all node feature families),
and, for node2vec on the two largest graphs measured, `bench/featurize.py` (node2vec alone, JIT
warm-up included; docs/BENCHMARKS.md). node2vec is pecanpy at METHOD.md defaults, one thread;
the node2vec timings of the four large datasets were taken while filling the feature cache for
the node2vec leave-one-out, two graphs at a time, one core each.

| dataset | spectral: embedding (s) | spectral: all features (s) | node2vec: embedding (s) | node2vec: all features (s) | node2vec alone, bench (s) |
|---|---:|---:|---:|---:|---:|""")
rng = lambda xs: f"{min(xs):.1f}-{max(xs):.1f}" if xs else "not measured"
for d in order:
    ts, ns = spec.get(d, []), n2v.get(d, [])
    W(f"| {d} | {rng([t.get('embeddings_spectral', 0) for t in ts])} | {rng([t['total'] for t in ts])} | "
      f"{rng([t.get('embeddings_node2vec', 0) for t in ns])} | {rng([t['total'] for t in ns])} | "
      f"{bench_n2v.get(d, '')} |")
W("""
The spectral embedding of every dataset takes seconds (the whole featurization of the largest,
amazon-book with 95k nodes, about 4 s), against 68 s of node2vec on ml-1m (9k nodes, one thread)
and about 1,300 s per amazon-book graph with one thread (648 s with two).
""")
# ---------------------------------------------------------------- reading
measured = [t for t in order if "pretrained-pair" in pair.get(t, {})]
missing = [t for t in order if t not in measured]
above_lg = [t for t in measured if t in lg and pair[t]["pretrained-pair"]["ndcg@20"] >= lg[t]]
vs_lg = ", ".join(f"{t} {pair[t]['pretrained-pair']['ndcg@20'] / lg[t]:.2f}x" for t in measured if t in lg)
knn_wins = sum(r >= 1.0 for _, r in ratios_knn)
pairs4 = {b: bk[("pair", b)] for b in ("spectral", "node2vec")}
n2v_rel = {t: pairs4["node2vec"][t]["pretrained-pair"]["ndcg@20"] / pairs4["spectral"][t]["pretrained-pair"]["ndcg@20"]
           for t in small4 if t in pairs4["node2vec"] and t in pairs4["spectral"]}
three_vs_seven = {t: pairs4["spectral"][t]["pretrained-pair"]["ndcg@20"] / pair[t]["pretrained-pair"]["ndcg@20"]
                  for t in small4 if t in pairs4["spectral"] and t in measured}
loo8_rel = {t: pair_n[t]["pretrained-pair"]["ndcg@20"] / pair[t]["pretrained-pair"]["ndcg@20"]
            for t in order if t in pair_n and t in measured}
n2v_pop = [r["pretrained-pair"]["ndcg@20"] / r["mostpop"]["ndcg@20"] for r in pair_n.values()]
n2v_knn = [r["pretrained-pair"]["ndcg@20"] / r["itemknn"]["ndcg@20"] for r in pair_n.values()]
if loo8_rel:
    gm = float(np.exp(np.mean(np.log(list(loo8_rel.values())))))
    backend_reading = (
        f"Leaving one of all eight datasets out, node2vec gives the pair model "
        f"{'about the same zero-shot quality as' if 0.97 <= gm <= 1.03 else ('lower zero-shot quality than' if gm < 1 else 'higher zero-shot quality than')} "
        f"the spectral backend (node2vec / spectral: {', '.join(f'{t} {r:.2f}' for t, r in loo8_rel.items())}; geometric mean "
        f"{gm:.3f}), and so did the leave-one-out over the four smaller datasets "
        f"({', '.join(f'{t} {r:.2f}' for t, r in n2v_rel.items())}). Per target the backends trade places: node2vec "
        f"scores higher on {', '.join(t for t, r in loo8_rel.items() if r > 1) or 'none'} and lower on "
        f"{', '.join(t for t, r in loo8_rel.items() if r < 1) or 'none'}. With node2vec the pair model meets the same "
        f"targets ({min(n2v_pop):.1f}x to {max(n2v_pop):.1f}x MostPop, median {statistics.median(n2v_knn):.2f}x ItemKNN). "
        f"The cost differs by one to three orders of magnitude: about a second for the spectral embedding of any "
        f"graph here against 10 to 22 minutes of node2vec per large graph on one core (table above). By these "
        f"numbers spectral is the default; node2vec stays selectable (`--backend node2vec`). The paper model "
        f"stays below MostPop on seven of eight targets with either backend.")
    if len(loo8_rel) < len(measured):
        backend_reading += f" (node2vec leave-one-out measured on {len(loo8_rel)} of the eight targets.)"
else:
    backend_reading = (
        f"Over the four smaller datasets the spectral backend gives the pair model about the same or better "
        f"zero-shot quality than node2vec (node2vec / spectral: {', '.join(f'{t} {r:.2f}' for t, r in n2v_rel.items())}) "
        f"at a fraction of the cost. Spectral is the default. The paper model is weak with either backend. The "
        f"node2vec leave-one-out over all eight datasets is not measured yet.")
gf_rel = [b / a for a, b in gf.values()]
W(f"""## Reading

- **Zero-shot against the target's own models.** On {'all eight targets' if not missing else ', '.join(measured)}, the
  pair model, which never saw a target interaction, beats MostPop fitted on the target by
  {min(r for _, r in ratios_pop):.1f}x to {max(r for _, r in ratios_pop):.1f}x and reaches or beats ItemKNN fitted on the target on
  {knn_wins} of {len(ratios_knn)} ({', '.join(f'{t} {r:.2f}x' for t, r in ratios_knn)}). Against LightGCN trained on the
  target it is at {vs_lg}: above it on {len(above_lg)} ({', '.join(above_lg) or 'none'}).""" +
  (f""" Both stated targets (>= 1.5x MostPop everywhere, >= ItemKNN on the median target) hold on
  these {len(measured)} targets.""" if ratios_pop and min(r for _, r in ratios_pop) >= 1.5 and statistics.median(r for _, r in ratios_knn) >= 1 else "") + """
- **Backends.** """ + backend_reading + f"""
- **More sources, same quality on the small targets.** Pretrained on the three other small
  datasets instead of all seven others, the pair model scores about the same on the four smaller
  targets (three sources / seven: {', '.join(f'{t} {r:.2f}' for t, r in three_vs_seven.items())}): the large sparse sources
  neither help nor hurt them, while a pretraining over three sources takes about a minute.
- **The paper-faithful model does not beat popularity.** Zero-shot it lands below MostPop on
  seven of eight targets (all but Douban), over the paper's five datasets as well as over all
  eight; in-domain on ml-1m it reaches 0.97x MostPop at best (investigation above). Node
  statistics let a model learn popularity, not preferences.
- **Train as you infer is not confirmed.** Computing the features on all training edges scores
  higher than the 80 % feature graph in {sum(r > 1 for r in gf_rel)} of {len(gf_rel)} (seed, target) pairs (ratio
  {min(gf_rel):.3f} to {max(gf_rel):.3f}, geometric mean {float(np.exp(np.mean(np.log(gf_rel)))):.3f}), and in both single-seed ablations
  (+13.5 % zero-shot on Douban, +16.9 % in-domain on ml-100k). The effect is small but
  consistent: the prototype's concern (positives look easier when their own edge is in the
  feature graph) costs less here than features computed from 20 % fewer edges. `graph_frac` stays
  0.8 in the configs behind every table above; `--graph-frac 1.0` is the better setting measured.
- **Ablation.** Removing the ItemKNN-style pair feature costs the most (-11 % zero-shot, -5 %
  in-domain), the paper model (no pair features) loses 94 % / 44 %. Most other single switches
  move NDCG@20 by less than 10 % in either direction, within the spread of one seed.
- **Interpolation.** Mixing the zero-shot ranker with models trained on the target helps both:
  +21.7 % over in-domain LightGCN and +49.4 % over BPR-MF on Douban (alpha chosen on validation,
  0.6 and 0.8); even the raw 0.5 mix gains +19 % / +40 %.
- **A weak source.** Pretrained on Last.fm alone, the pair model stays below MostPop even on
  Last.fm itself (matrix above), while Last.fm as a target of the seven-source pretraining is one
  of the best results. Single small sources are a poor pretraining set; why Last.fm alone fails is
  open.
""")

results = DOCS / "RESULTS.md"
text = results.read_text()
marker = "\n## Zero-shot: leave one domain out over all eight datasets"
head = text[:text.index(marker)] if marker in text else text
results.write_text(head.rstrip() + "\n\n" + "\n".join(out) + "\n")
print(f"wrote {results}")
