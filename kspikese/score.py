"""``kspikese score``: a finished run's models scored on its validation (or test) utterances.

The tables score the test set only, and recipe choices must not be made there.  This command
scores what a run has already trained — the ANN, the converted and the fine-tuned SNN, and the
noisy input beside them — on whole utterances of the run's validation split, through the same
inference path and metrics as the tables (:func:`kspikese.pipeline.evaluate_columns`), and
writes ``<run folder>/scores-<split>.md|csv|json``: the means of every measure and the SI-SNR
of each voice.  It trains nothing: a stage that is not done is an error that names the command
that makes it.  Results are cached in ``<run folder>/eval-<split>/`` (on the test split the
table's own ``eval/`` is read when it holds the same measures, never written), so a second call
only reads them.
"""

import sys

from kspikese import config as configs

from kspikese.runs import STAGES

#: the stages that can be scored, in table order (the run folder's stages)
STAGE_NAMES = tuple(STAGES)
DEFAULT_STAGES = ("ann", "convert", "finetune")


class ScoreError(ValueError):
    """A run or argument that cannot be scored (the message says which and what was expected)."""


def check_stages(stages):
    """``stages`` (a list or a comma-separated string) as a list, or :class:`ScoreError`."""
    names = [s.strip() for s in stages.split(",")] if isinstance(stages, str) else list(stages)
    bad = [s for s in names if s not in STAGE_NAMES]
    if bad or not names:
        raise ScoreError(f"--stages: expected names from {', '.join(STAGE_NAMES)}, "
                         f"got {','.join(names) or 'nothing'}")
    return names


def score_run(table, *, split="valid", stages=DEFAULT_STAGES, metrics=None, seed=0,
              data="default", results="results", quick=False, data_dir=None, vctk_root=None,
              timit_root=None, profile="cpu", workers=2):
    """Score a finished run's ``stages`` and the noisy input on the utterances of ``split``.

    Parameters
    ----------
    table : str
        ``table1`` .. ``table4`` or an experiment YAML (as :func:`kspikese.pipeline.reproduce`).
    split : {"valid", "test"}
        The utterances scored.
    stages : sequence of str
        From ``ann``, ``convert``, ``random``, ``finetune``; each must be done.
    metrics : list of str, optional
        The measures (default: the config's ``eval: metrics:``).
    seed, data, results, quick, data_dir, vctk_root, timit_root, profile
        Locate the run, as :func:`kspikese.pipeline.open_run`.
    workers : int
        Metric worker processes.

    Returns
    -------
    dict
        The payload written to ``scores-<split>.json``: ``means`` per column, ``si_snr_by_voice``
        rows ``[voice, utterances, SI-SNR per column...]``, the data and the run.

    Raises
    ------
    ScoreError
        An unknown split or stage, no run folder, or a stage that is not done (checked before
        anything is written).
    """
    from kspikese import models, pipeline, report, tables
    from kspikese.metrics import METRICS
    from kspikese.metrics.evaluate import check_metrics
    from kspikese.runs import run_folder

    if split not in ("valid", "test"):
        raise ScoreError(f"--split: expected valid or test, got {split!r}")
    stages = check_stages(stages)
    if metrics is not None:
        try:
            metrics = check_metrics(metrics)
        except ValueError as exc:
            raise ScoreError(f"--metrics: {exc}") from None
    cfg = configs.load(table, quick=quick, profile=profile)
    folder = run_folder(cfg, results, data, seed)
    if not (folder / "run.json").exists():
        raise ScoreError(f"no run folder {folder} (expected a run of {cfg['table']} with profile "
                         f"`{cfg.get('profile', 'cpu')}`; make it with `kspikese reproduce "
                         f"{table} --profile {cfg.get('profile', 'cpu')}`)")
    run, corpus = pipeline.open_run(table, seed=seed, data=data, results=results, quick=quick,
                                    data_dir=data_dir, vctk_root=vctk_root, timit_root=timit_root,
                                    profile=profile, _writer=False)
    missing = [s for s in stages if not run.stage_done(s)]
    if missing:
        raise ScoreError(f"{run.dir}: stage {', '.join(missing)} is not done with this config's "
                         f"settings (run `kspikese reproduce {table} --profile {run.profile}` "
                         f"first, or leave it out with --stages)")
    run = run.reopened(writer=True)
    loaded = {s: models.load_model(run.path(s)) for s in stages}
    scored = pipeline.evaluate_columns(run, corpus, loaded, workers=workers, split=split,
                                       metrics=metrics, cache=f"eval-{split}",
                                       reuse=("eval",) if split == "test" else ())
    cols = list(scored)
    metrics = list(metrics or cfg["eval"].get("metrics") or METRICS)
    means = {c: {m: scored[c]["means"].get(m) for m in metrics} for c in cols}
    header, rows = ["Metric"] + cols, report.metric_rows(cols, means, metrics)
    info = run.state.get("data", corpus.info)
    names = {"valid": "validation", "test": "test"}
    md = [f"# {run.table} (profile `{run.profile}`, seed {run.seed}): {names[split]} scores", "",
          f"Data: {tables.data_line(info, cfg['recipe'])}. Scored: the {names[split]} split, "
          f"{len(scored['Noisy']['rows'])} whole utterances through the inference path "
          f"({pipeline.eval_settings(cfg)[0]:.0%} overlap-add). Run folder: `{run.dir}`.", "",
          report.markdown_table(header, rows), ""]
    by_voice, by_snr, sections = tables.breakdown_sections(scored, cols, names[split])
    md += sections
    payload = {"table": run.table, "profile": run.profile, "seed": run.seed, "split": split,
               "data": info, "columns": cols, "stages": {c: s for c, s in
                                                         pipeline.column_stages(cfg).items()
                                                         if c in cols},
               "means": means, "si_snr_by_voice": by_voice,
               "si_snr_by_input_snr": by_snr, "run": str(run.dir)}
    report.write_all(run.dir, f"scores-{split}", "\n".join(md), header, rows, payload)
    print("\n".join(md))
    print(f"wrote {run.dir}/scores-{split}.md|csv|json")
    return payload


# ------------------------------------------------------------------------------ command
def add_arguments(parser):
    from kspikese.experiment import add_common_arguments

    parser.add_argument("table", help="table1..table4, or a path to an experiment YAML")
    parser.add_argument("--split", default="valid", choices=("valid", "test"),
                        help="the utterances scored (default valid: choose recipes here, not "
                             "on the test set)")
    parser.add_argument("--stages", default=",".join(DEFAULT_STAGES),
                        help=f"comma-separated stages to score, from {', '.join(STAGE_NAMES)} "
                             f"(default {','.join(DEFAULT_STAGES)}); the noisy input is always "
                             f"scored")
    parser.add_argument("--metrics", default=None,
                        help="comma-separated measures (default: the table's), e.g. "
                             "si_snr,stoi,pesq")
    add_common_arguments(parser)


def run(args):
    from kspikese.corpus import CorpusError
    from kspikese.experiment import check_arguments

    if args.force:
        print("kspikese score: error: --force: score trains nothing, so there is nothing to redo",
              file=sys.stderr)
        return 2
    if check_arguments(args, "score") is None:
        return 2
    metrics = args.metrics.split(",") if args.metrics else None
    try:
        score_run(args.table, split=args.split, stages=args.stages, metrics=metrics,
                  seed=args.seed, data=args.data, results=args.results, quick=args.quick,
                  data_dir=args.data_dir, vctk_root=args.vctk_root, timit_root=args.timit_root,
                  profile=args.profile, workers=args.metric_workers)
    except (ScoreError, configs.ConfigError, CorpusError) as exc:
        print(f"kspikese score: error: {exc}", file=sys.stderr)
        return 2
    return 0
