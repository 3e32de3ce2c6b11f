"""Every call the service makes into the app and the domain packages, in one thin package.

The API and the database code never import :mod:`app`, :mod:`planning`, :mod:`agents`,
:mod:`envs`, :mod:`simulator` or :mod:`experiments` themselves: they call the functions here.
When those packages change shape, this is the one package to adapt (``runs``: run folders, exports, MLflow and
the pipeline command; ``rules``: rules, catalogs and the rule check of an edited schedule;
``simulate``: what-ifs and the alternatives beside a schedule).

What comes from where:

- a run's output folder (:func:`read_run_folder`): the tables :mod:`app.exports` writes, the
  fitted catalog, and the run's identity (a manifest when the run wrote one, else the MLflow
  run tagged with the plan's ``plan_key``);
- simulated outcomes: :func:`planning.outcomes.simulate_schedule` (paired by seed) and
  :func:`planning.whatif.what_if` / :func:`planning.whatif.constrain_schedule`;
- alternative plans: :func:`planning.from_policy.plan_of` over the heuristics of
  :func:`agents.baselines.default_baselines` and the exact DP (:class:`agents.baselines.DPPolicy`);
- the business rules: :mod:`envs.rules` masks, replayed week by week over an edited schedule;
- the price-execution export: :func:`app.exports.write_tables`;
- the experiments leaderboard: :mod:`experiments.compare`.
"""

from service.library.rules import (
    RuleBreak,
    catalog_from_bytes,
    parse_fixed_policy,
    rule_breaks,
    rules_from_config,
    rules_to_dict,
    rules_with,
    take_skus,
)
from service.library.runs import (
    CATALOG_ARTIFACT,
    MANIFEST_NAMES,
    WEEKLY_KEYS,
    RunFolder,
    leaderboard,
    pipeline_command,
    read_run_folder,
    roi_lines,
    run_id_from_log,
    write_price_export,
)
from service.library.simulate import (
    OUTCOME_METRICS,
    SimSettings,
    WhatIfRequest,
    alternatives,
    what_if,
)

__all__ = [
    "CATALOG_ARTIFACT",
    "MANIFEST_NAMES",
    "OUTCOME_METRICS",
    "WEEKLY_KEYS",
    "RuleBreak",
    "RunFolder",
    "SimSettings",
    "WhatIfRequest",
    "alternatives",
    "catalog_from_bytes",
    "leaderboard",
    "parse_fixed_policy",
    "pipeline_command",
    "read_run_folder",
    "roi_lines",
    "rule_breaks",
    "rules_from_config",
    "rules_to_dict",
    "rules_with",
    "run_id_from_log",
    "take_skus",
    "what_if",
    "write_price_export",
]
