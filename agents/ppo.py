"""Masked PPO (sb3-contrib ``MaskablePPO``): one discount policy for every SKU of a catalog.

The agent trains on :class:`envs.batched.BatchedMarkdownEnv`: N SKU slots stepped at once,
each slot drawing a new SKU (and optionally a horizon) from a catalog at reset, so the policy
learns to condition on the SKU's descriptors in the observation. Business rules are action
masks: the policy can never pick a forbidden action, during training or after.

:class:`PPOConfig` holds every hyperparameter with the defaults chosen for this problem (see
``docs/agents.md``, "PPO: configuration"); :func:`train_ppo` trains (resuming from a
checkpoint when one exists); :class:`PPOPolicy` wraps a trained model behind the shared
:class:`~agents.policy.Policy` interface.

Training logs its progress (steps, steps/s, time left) every :data:`PROGRESS_LOG_SECONDS`
through :mod:`logging` and draws a bar through :mod:`ingest.progress`. Nothing here sets
torch's thread count: at this network size one thread trains about 4x faster than many, so
entry points (the CLI, the benchmarks, the tests) call ``torch.set_num_threads(1)``.
"""

from __future__ import annotations

import io
import json
import logging
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from agents.budget_ppo import BUDGET_PRIORS, solve_pool
from agents.fluid import HINT_FIELDS, PRIOR_START, augment, hint_bounds, hint_dim
from agents.policy import Policy
from envs.batched import BatchedMarkdownEnv
from envs.budget import N_BUDGET
from envs.budget_seq import SequentialCategoryEnv
from envs.config import RulesConfig
from envs.context import PolicyContext
from envs.learning import LearningMarkdownEnv
from envs.markdown import EnvConfig
from envs.memory import MemoryMarkdownEnv
from envs.observation import OBS_DIM
from ingest.errors import ConfigError
from ingest.io import atomic_path, write_text_atomic
from ingest.progress import Progress
from simulator.demand import Catalog

log = logging.getLogger(__name__)

CHECKPOINT_MODEL = "model.zip"
#: The entry of an SB3 model zip that holds the class parameters (every saved model has it).
SB3_DATA_ENTRY = "data"
CHECKPOINT_STATE = "state.json"


@dataclass(frozen=True)
class PPOConfig:
    """Every knob of a PPO training run (CleanRL style: one frozen dataclass).

    The defaults are tuned for quality per minute on 2 CPU cores (see ``docs/agents.md``).

    Parameters
    ----------
    total_timesteps : int
        SKU-weeks of experience to collect (summed over slots).
    n_envs : int
        SKU slots stepped at once by the batched env. Many slots make collection cheap
        (one vectorized market step for all of them).
    n_steps : int
        Weeks collected per slot per update; the rollout holds ``n_envs * n_steps`` samples.
    batch_size : int
        Minibatch size of the gradient steps. Large minibatches run fast on CPU.
    n_epochs : int
        Passes over each rollout.
    learning_rate : float
        Adam step size at the start; it decays linearly to ``learning_rate * lr_final_fraction``.
    lr_final_fraction : float
        Share of the learning rate left at the end of training (annealing sharpens the
        policy near the optimum).
    gamma : float
        Discount factor. 1.0: the objective is the undiscounted profit over a finite
        horizon, exactly what the DP optimises.
    gae_lambda : float
        GAE trade-off between bias and variance.
    clip_range : float
        PPO's policy clip.
    ent_coef : float
        Entropy bonus (exploration early on).
    vf_coef : float
        Weight of the value loss.
    max_grad_norm : float
        Gradient clipping.
    target_kl : float or None
        Stop an update's epochs early when the approximate KL exceeds this. ``None`` = off.
    net_arch : tuple of int
        Hidden layers of both the policy and the value network.
    activation : {"tanh", "relu"}
        Hidden activation.
    horizon_range : tuple of int
        (shortest, longest) horizon in weeks drawn per slot at reset, so one policy serves
        every horizon.
    fluid_hint : bool
        Append the fluid (certainty-equivalent) depth computed from the observation
        (:func:`agents.fluid.hint_features`), so the network learns a correction to it.
    fluid_values : bool
        With ``fluid_hint``, also append the certainty-equivalent re-solve: the fluid
        action's depth and coupon and every action's fluid regret
        (:func:`agents.fluid.value_features`).
    fluid_prior : float
        With ``fluid_values``, start the logits at ``fluid_prior * fluid regret``
        (:class:`FluidPriorPolicy`, a residual policy over the fluid re-solve; the scale is
        learned). ``0`` = a plain MLP policy.
    draw_parameters : bool
        Robust training: at each reset, draw the SKU's parameters from their fitted
        uncertainty (``Catalog.sample``) instead of using the point estimates.
    belief_grid : int
        Unknown demand: train in the learning market (:class:`envs.learning.LearningMarkdownEnv`,
        the truth drawn each episode from a ``belief_grid x belief_grid`` prior around the
        catalog's estimates, the posterior in the observation). 0 = parameters known.
    demand_memory : bool
        Demand with memory: train in :class:`envs.memory.MemoryMarkdownEnv` (the SKU's
        reference-price and fatigue law appended to the observation).
    shared_budget : bool
        A shared promotion limit: train in :class:`envs.budget_seq.SequentialCategoryEnv`
        (``n_envs`` categories of ``budget_skus`` SKUs deciding one SKU at a time, the slots
        left in the observation, the horizon ``horizon_range[1]``).
    budget_skus : int
        SKUs per training category (with ``shared_budget``).
    budget_slots : tuple of int
        (lowest, highest) limit ``K`` drawn per training category (with ``shared_budget``).
    budget_prior : {"lagrangian", "lagrangian_weekly", "fluid"}
        With ``shared_budget``, what the policy starts from: ``fluid`` (each SKU's fluid
        regrets, blind to the slots' value), ``lagrangian``, the default (each SKU's DP priced at its
        category's Lagrange multiplier, :class:`agents.lagrangian.SlotPrices`: the SKUs decide
        in order of its advantage and the prior is the Lagrangian plan; the training
        categories are a pool of ``budget_pool`` solved in advance,
        :func:`agents.budget_ppo.solve_pool`) or ``lagrangian_weekly`` (the same with one
        multiplier per week, :func:`agents.lagrangian.solve_weekly`: the prior is the weekly
        plan). Saved with the model (:attr:`PPOPolicy.budget_prior`), so that it is played
        with the prices it was trained on.
    budget_pool : int
        Training categories solved in advance with a Lagrangian ``budget_prior``.
    n_catalog_skus : int
        Size of the synthetic training catalog when none is given.
    device : str
        ``"cpu"`` (default) or ``"cuda"`` (or any torch device string).
    seed : int
        The one seed of the run: child seeds for the env, the catalog and torch come from
        ``SeedSequence(seed)``.
    checkpoint_every : int
        Save a checkpoint every this many timesteps (0 = only at the end).
    """

    total_timesteps: int = 4_000_000
    n_envs: int = 1024
    n_steps: int = 16
    batch_size: int = 2048
    n_epochs: int = 2
    learning_rate: float = 1e-3
    lr_final_fraction: float = 0.0
    gamma: float = 1.0
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.003
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    net_arch: tuple[int, ...] = (128, 128)
    activation: str = "tanh"
    horizon_range: tuple[int, int] = (4, 26)
    fluid_hint: bool = True
    fluid_values: bool = True
    fluid_prior: float = 8.0
    draw_parameters: bool = False
    belief_grid: int = 0
    demand_memory: bool = False
    shared_budget: bool = False
    budget_skus: int = 4
    budget_slots: tuple[int, int] = (1, 2)
    budget_prior: str = "lagrangian"
    budget_pool: int = 128
    n_catalog_skus: int = 20_000
    device: str = "cpu"
    seed: int = 0
    checkpoint_every: int = 1_000_000

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> ConfigError:
            return ConfigError(f"ppo.{name} = {getattr(self, name)!r}; expected {expected}")

        for name in ("total_timesteps", "n_envs", "n_steps", "batch_size", "n_epochs"):
            if int(getattr(self, name)) < 1:
                raise bad(name, "an integer >= 1")
        if self.batch_size > self.n_envs * self.n_steps:
            raise ConfigError(
                f"ppo.batch_size = {self.batch_size} is larger than the rollout "
                f"(n_envs * n_steps = {self.n_envs * self.n_steps}); lower batch_size or raise "
                f"n_envs/n_steps"
            )
        if not self.learning_rate > 0:
            raise bad("learning_rate", "> 0")
        if not 0 <= self.lr_final_fraction <= 1:
            raise bad("lr_final_fraction", "in [0, 1]")
        if not 0 < self.gamma <= 1:
            raise bad("gamma", "in (0, 1]")
        if not 0 <= self.gae_lambda <= 1:
            raise bad("gae_lambda", "in [0, 1]")
        if not self.clip_range > 0:
            raise bad("clip_range", "> 0")
        if self.ent_coef < 0 or self.vf_coef < 0 or not self.max_grad_norm > 0:
            raise ConfigError("ppo: ent_coef and vf_coef must be >= 0, max_grad_norm > 0")
        if not self.net_arch or any(int(h) < 1 for h in self.net_arch):
            raise bad("net_arch", "a non-empty tuple of layer sizes >= 1")
        if self.activation not in ("tanh", "relu"):
            raise bad("activation", "'tanh' or 'relu'")
        lo, hi = self.horizon_range
        if not 1 <= lo <= hi <= 52:
            raise bad("horizon_range", "(shortest, longest) with 1 <= shortest <= longest <= 52")
        if self.n_catalog_skus < 1:
            raise bad("n_catalog_skus", ">= 1")
        if self.belief_grid < 0:
            raise bad("belief_grid", ">= 0 (0 = parameters known)")
        if self.belief_grid and self.draw_parameters:
            raise ConfigError(
                "ppo.belief_grid and ppo.draw_parameters are both on; the learning market "
                "draws the parameters itself: switch draw_parameters off"
            )
        if self.belief_grid and self.demand_memory:
            raise ConfigError(
                "ppo.belief_grid and ppo.demand_memory are both on; no market combines unknown "
                "demand with memory yet: switch one off"
            )
        if self.shared_budget and (self.belief_grid or self.demand_memory):
            raise ConfigError(
                "ppo.shared_budget is on with ppo.belief_grid or ppo.demand_memory; no market "
                "combines a shared budget with unknown demand or memory: switch one off"
            )
        k_lo, k_hi = self.budget_slots
        if self.budget_skus < 2 or not 1 <= k_lo <= k_hi < self.budget_skus:
            raise ConfigError(
                f"ppo.budget_skus = {self.budget_skus}, ppo.budget_slots = {self.budget_slots}; "
                f"expected budget_skus >= 2 and 1 <= lowest <= highest < budget_skus"
            )
        if self.budget_prior not in BUDGET_PRIORS:
            raise bad("budget_prior", " or ".join(repr(p) for p in BUDGET_PRIORS))
        if self.budget_pool < 1:
            raise bad("budget_pool", ">= 1")
        if self.shared_budget and self.lagrangian_prior:
            if not self.uses_prior:
                raise ConfigError(
                    f"ppo.budget_prior = {self.budget_prior!r} needs the prior policy: "
                    "fluid_hint, fluid_values on and fluid_prior > 0"
                )
            if self.budget_pool * self.budget_skus > self.n_catalog_skus:
                raise ConfigError(
                    f"ppo.budget_pool = {self.budget_pool} categories of {self.budget_skus} "
                    f"SKUs need n_catalog_skus >= {self.budget_pool * self.budget_skus}; got "
                    f"{self.n_catalog_skus}"
                )
        if self.fluid_prior < 0:
            raise bad("fluid_prior", ">= 0 (0 = off)")
        if self.checkpoint_every < 0:
            raise bad("checkpoint_every", ">= 0")
        if not (self.device == "cpu" or self.device.startswith("cuda") or self.device == "auto"):
            raise bad("device", "'cpu', 'cuda', 'cuda:N' or 'auto'")

    @property
    def uses_prior(self) -> bool:
        """True when the policy is a :class:`FluidPriorPolicy`."""
        return self.fluid_hint and self.fluid_values and self.fluid_prior > 0

    @property
    def lagrangian_prior(self) -> bool:
        """True when ``budget_prior`` is one of the Lagrangian plans (the slot prices are the
        prior's features)."""
        return self.budget_prior.startswith("lagrangian")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for MLflow params and checkpoints)."""
        return asdict(self)


class _LinearSchedule:
    """Learning rate falling linearly from ``start`` to ``start * final_fraction``.

    A class, not a lambda, so a saved model pickles cleanly.
    """

    def __init__(self, start: float, final_fraction: float) -> None:
        self.start = start
        self.final_fraction = final_fraction

    def __call__(self, progress_remaining: float) -> float:
        frac = self.final_fraction + (1.0 - self.final_fraction) * progress_remaining
        return self.start * frac


POOL_SEED_KEY = 7
"""Spawn key (after the run seed) of the budget training pool's generator."""


def _child_seeds(seed: int) -> tuple[int, int, int]:
    """(env, catalog, torch) seeds spawned from one run seed."""
    children = np.random.SeedSequence(seed).spawn(3)
    env_s, cat_s, torch_s = (int(c.generate_state(1)[0]) for c in children)
    return env_s, cat_s, torch_s


def make_training_env(
    config: PPOConfig,
    rules: RulesConfig,
    catalog: Catalog,
    *,
    seed: int | None = None,
) -> VecEnv:
    """The batched env PPO trains on: ``config.n_envs`` slots drawing SKUs from ``catalog``
    (the learning env when ``config.belief_grid``), with the fluid hint when asked."""

    lo, hi = config.horizon_range
    env_config = EnvConfig(
        horizon_weeks=hi,
        rules=rules,
        catalog=catalog,
        draw_parameters=config.draw_parameters,
        horizon_range=(lo, hi) if lo < hi else None,
    )
    env_seed = _child_seeds(config.seed)[0] if seed is None else seed
    env: VecEnv
    if config.shared_budget:
        pool = None
        if config.lagrangian_prior:
            # the same pool on a resume: drawn from the run seed, not the env's
            pool_rng = np.random.default_rng(np.random.SeedSequence([config.seed, POOL_SEED_KEY]))
            pool = solve_pool(
                catalog,
                rules,
                n_categories=config.budget_pool,
                n_skus=config.budget_skus,
                max_promoted=config.budget_slots,
                horizon_weeks=hi,
                rng=pool_rng,
                weekly=config.budget_prior == "lagrangian_weekly",
            )
        env = SequentialCategoryEnv(
            replace(env_config, horizon_weeks=hi, horizon_range=None),
            config.n_envs,
            config.budget_skus,
            max_promoted=config.budget_slots,
            seed=env_seed,
            pool=pool,
        )
    elif config.belief_grid:
        env = LearningMarkdownEnv(
            env_config, n_slots=config.n_envs, seed=env_seed, grid=config.belief_grid
        )
    elif config.demand_memory:
        env = MemoryMarkdownEnv(env_config, n_slots=config.n_envs, seed=env_seed)
    else:
        env = BatchedMarkdownEnv(env_config, n_slots=config.n_envs, seed=env_seed)
    return FluidHint(env, values=config.fluid_values) if config.fluid_hint else env


# ---------------------------------------------------------------------------- fluid hint
class FluidHint(VecEnvWrapper):
    """Append the fluid model's features (:func:`agents.fluid.augment`) to every observation
    of a batched env (masks pass through). They come from the env's ``policy_context()``."""

    def __init__(self, venv: VecEnv, values: bool = True) -> None:
        self.values = values
        self.base_dim = int(venv.observation_space.shape[0])  # type: ignore[index]
        rules: RulesConfig = venv.rules  # type: ignore[attr-defined]
        extra_low, extra_high = hint_bounds(rules, values)
        low = np.concatenate([venv.observation_space.low, extra_low])  # type: ignore[attr-defined]
        high = np.concatenate([venv.observation_space.high, extra_high])  # type: ignore[attr-defined]
        self._pad = np.zeros(len(extra_low), dtype=np.float32)
        space = spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        super().__init__(venv, observation_space=space)

    def _augment(self, obs: Any) -> np.ndarray:
        ctx = self.venv.policy_context()  # type: ignore[attr-defined]
        masks = self.venv.action_masks() if self.values else None  # type: ignore[attr-defined]
        return augment(np.asarray(obs), ctx, masks, values=self.values)

    def reset(self) -> np.ndarray:
        return self._augment(self.venv.reset())

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        pad = self._pad
        for info in infos:
            if "terminal_observation" in info:
                # Only read by SB3 on truncation, which these envs never report (episodes end
                # at the exit week); the hint of a finished SKU is not available here.
                term = np.asarray(info["terminal_observation"], dtype=np.float32)
                info["terminal_observation"] = np.concatenate([term, pad])
        return self._augment(obs), rewards, dones, infos

    def action_masks(self) -> np.ndarray:
        return self.venv.action_masks()  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- fluid prior
class _PriorExtractor(torch.nn.Module):
    """SB3's ``MlpExtractor`` whose actor output also carries the fluid regrets (a slice of the
    observation) through to the action head."""

    def __init__(self, base: torch.nn.Module, start: int, n_actions: int) -> None:
        super().__init__()
        self.base = base
        self.start = start
        self.n_actions = n_actions
        self.latent_dim_pi = int(base.latent_dim_pi) + n_actions  # type: ignore[arg-type]
        self.latent_dim_vf = int(base.latent_dim_vf)  # type: ignore[arg-type]

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        prior = features[..., self.start : self.start + self.n_actions]
        return torch.cat([self.base.forward_actor(features), prior], dim=-1)  # type: ignore[operator]

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        return self.base.forward_critic(features)  # type: ignore[operator,no-any-return]


class _PriorHead(torch.nn.Module):
    """Action logits = a linear layer of the hidden state + ``scale * fluid regret``; the
    scale is learned (kept positive through its log)."""

    def __init__(self, hidden: int, n_actions: int, scale: float) -> None:
        super().__init__()
        self.hidden = hidden
        self.linear = torch.nn.Linear(hidden, n_actions)
        self.log_scale = torch.nn.Parameter(torch.tensor(float(np.log(scale))))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        head = self.linear(latent[..., : self.hidden])
        return head + self.log_scale.exp() * latent[..., self.hidden :]


class FluidPriorPolicy(MaskableActorCriticPolicy):
    """Masked actor-critic whose logits start at the certainty-equivalent re-solve.

    Residual policy learning (Silver et al., 2018; Johannink et al., 2019) over a known
    controller: the action head adds ``scale * regret`` (each action's fluid regret from
    :func:`agents.fluid.value_features`, a slice of the observation starting at
    ``prior_start``) to the network's logits. With the network's output layer initialised
    near zero, the first policy is a soft version of the fluid re-solve, and PPO learns the
    correction the stochastic, rule-bound problem needs instead of the whole price map.
    """

    def __init__(self, *args: Any, prior_start: int, prior_scale: float = 8.0, **kwargs: Any):
        self.prior_start = int(prior_start)
        self.prior_scale = float(prior_scale)
        super().__init__(*args, **kwargs)

    def _build_mlp_extractor(self) -> None:
        super()._build_mlp_extractor()
        n_actions = int(self.action_space.n)  # type: ignore[attr-defined]
        self.mlp_extractor = _PriorExtractor(  # type: ignore[assignment]
            self.mlp_extractor, self.prior_start, n_actions
        )

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        base: Any = self.mlp_extractor.base  # type: ignore[attr-defined]
        n_actions = int(self.action_space.n)  # type: ignore[attr-defined]
        self.action_net = _PriorHead(int(base.latent_dim_pi), n_actions, self.prior_scale)
        if self.ortho_init:
            self.action_net.linear.apply(partial(self.init_weights, gain=0.01))
        self.optimizer = self.optimizer_class(
            self.parameters(),
            lr=lr_schedule(1),  # type: ignore[call-arg]
            **self.optimizer_kwargs,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(prior_start=self.prior_start, prior_scale=self.prior_scale)
        return data


def resolve_device(device: str) -> str:
    """The torch device a run trains on: ``"auto"`` is CUDA when a GPU is visible, else the
    CPU; ``"cuda"`` (or ``"cuda:N"``) without a visible GPU is refused rather than silently
    trained on the CPU, so a run asked for the GPU never reports CPU timings as GPU ones."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"ppo.device = {device!r}, but torch sees no CUDA device "
                f"(torch {torch.__version__}, cuda available: False); expected 'cpu' or 'auto' "
                "on this machine"
            )
        index = device.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ConfigError(
                f"ppo.device = {device!r}: expected 'cuda' or 'cuda:N' with N below "
                f"{torch.cuda.device_count()} (the GPUs torch sees)"
            )
    return device


def build_model(config: PPOConfig, env: VecEnv) -> MaskablePPO:
    """A fresh ``MaskablePPO`` with the config's hyperparameters."""
    activation = torch.nn.Tanh if config.activation == "tanh" else torch.nn.ReLU
    arch = list(config.net_arch)
    policy_kwargs: dict[str, Any] = {
        "net_arch": {"pi": arch, "vf": arch},
        "activation_fn": activation,
    }
    policy: str | type = "MlpPolicy"
    if config.uses_prior:
        policy = FluidPriorPolicy
        # the regrets follow the env's own fields, the hint and the value head; the
        # Lagrangian ones follow the budget fields
        base = int(getattr(env, "base_dim", OBS_DIM))
        start = PRIOR_START - OBS_DIM + base
        if config.shared_budget and config.lagrangian_prior:
            start = OBS_DIM + N_BUDGET
        policy_kwargs.update(prior_start=start, prior_scale=config.fluid_prior)
    model = MaskablePPO(
        policy,
        env,
        learning_rate=_LinearSchedule(config.learning_rate, config.lr_final_fraction),
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        clip_range=config.clip_range,
        ent_coef=config.ent_coef,
        vf_coef=config.vf_coef,
        max_grad_norm=config.max_grad_norm,
        target_kl=config.target_kl,
        policy_kwargs=policy_kwargs,
        seed=_child_seeds(config.seed)[2],
        device=resolve_device(config.device),
        verbose=0,
    )
    # saved with the model (SB3 keeps the model's own attributes), so that a budget policy is
    # played with the slot prices it was trained on (:attr:`PPOPolicy.budget_prior`)
    model.budget_prior = config.budget_prior if config.shared_budget else None  # type: ignore[attr-defined]
    return model


# ---------------------------------------------------------------------------- checkpoints
def load_model(path: str | Path, *, env: VecEnv | None = None, device: str = "cpu") -> MaskablePPO:
    """Load a ``MaskablePPO`` model zip, with a clear error for a missing or unusable file.

    Raises
    ------
    ConfigError
        Naming the file: it does not exist, is not a zip (corrupt or truncated), or is a zip
        that does not hold a model this version can read.
    """
    p = Path(path)
    expected = "a model.zip written by deadstock train or the run's policy stage"
    if not p.is_file():
        raise ConfigError(f"PPO model {str(p)!r} does not exist; expected {expected}")
    try:
        with zipfile.ZipFile(p) as archive:
            names = set(archive.namelist())
            broken = archive.testzip()  # reads every entry and checks its CRC
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise ConfigError(
            f"PPO model {str(p)!r} is not a zip file (corrupt or truncated?); expected {expected}"
        ) from None
    if broken is not None or SB3_DATA_ENTRY not in names:
        why = f"entry {broken!r} is damaged" if broken else f"no {SB3_DATA_ENTRY!r} entry"
        raise ConfigError(
            f"PPO model {str(p)!r} is not a complete model zip ({why}: truncated, or not a "
            f"model?); expected {expected}"
        )
    try:
        return MaskablePPO.load(str(p), env=env, device=device)
    except Exception as err:  # noqa: BLE001 - any failure to read a user's file is its fault
        lines = str(err).strip().splitlines()
        why = lines[0] if lines else type(err).__name__
        raise ConfigError(
            f"PPO model {str(p)!r} cannot be loaded ({type(err).__name__}: {why}); "
            f"expected {expected}"
        ) from None


def save_checkpoint(model: BaseAlgorithm, folder: Path, config: PPOConfig) -> Path:
    """Write ``model.zip`` and ``state.json`` (step count, config) atomically into ``folder``."""
    folder = Path(folder)
    buf = io.BytesIO()
    model.save(buf)
    with atomic_path(folder / CHECKPOINT_MODEL) as tmp:
        tmp.write_bytes(buf.getvalue())
    state = {"num_timesteps": int(model.num_timesteps), "config": config.to_dict()}
    write_text_atomic(folder / CHECKPOINT_STATE, json.dumps(state, indent=2))
    return folder


def load_checkpoint_state(folder: Path) -> dict[str, Any] | None:
    """The saved ``state.json`` of a checkpoint folder, or ``None`` when there is none."""
    path = Path(folder) / CHECKPOINT_STATE
    if not path.exists() or not (Path(folder) / CHECKPOINT_MODEL).exists():
        return None
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as err:
        raise ConfigError(f"checkpoint {str(path)!r} is unreadable: {err}") from None


SNAPSHOT_DIR = "snapshots"
"""Sub-folder of a checkpoint folder that keeps every checkpoint (``keep_snapshots``)."""


def snapshot_paths(folder: Path) -> list[Path]:
    """The snapshots kept in checkpoint folder ``folder``, oldest first (none: ``[]``)."""
    return sorted((Path(folder) / SNAPSHOT_DIR).glob("model_*.zip"))


def snapshot_steps(path: Path) -> int:
    """The step count a snapshot was taken at (from its name, ``model_<steps>.zip``).

    Raises
    ------
    ConfigError
        When the name carries no step count (a file put there by hand).
    """
    digits = Path(path).stem.split("_", 1)[-1]
    if not digits.isdigit():
        raise ConfigError(
            f"snapshot {str(path)!r}: expected a name model_<steps>.zip with the step count "
            f"in digits; got {Path(path).name!r}"
        )
    return int(digits)


SNAPSHOT_FROM = 0.5
"""Share of training after which a snapshot is a candidate of the snapshot guard: the second
half, where the learning curves have left their steep start."""


def late_snapshots(folder: Path, from_fraction: float = SNAPSHOT_FROM) -> list[Path]:
    """The snapshots of checkpoint folder ``folder`` taken at or after ``from_fraction`` of the
    run's last step, without the last one (the final model itself), oldest first."""
    paths = snapshot_paths(folder)
    if len(paths) < 2:
        return []
    last = snapshot_steps(paths[-1])
    return [p for p in paths[:-1] if snapshot_steps(p) >= from_fraction * last]


MEMBER_DIR = "members"
"""Sub-folder of a checkpoint folder that holds the other members of an ensemble
(``members/m<j>``, each a checkpoint folder of its own)."""

MEMBER_KEY = 0x6D656D62
"""Spawn key of ensemble members' run seeds (:func:`member_seed`)."""


def member_seed(seed: int, member: int) -> int:
    """The run seed of ensemble member ``member`` of a run seeded ``seed``: member 0 is the
    run itself (the same network as without an ensemble); the others draw their seeds, and so
    their training catalogs, env streams and initial weights, from ``(seed, member)``."""
    if member < 0:
        raise ConfigError(f"member = {member}; expected an index >= 0")
    if member == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), MEMBER_KEY, int(member)]).generate_state(1)[0])


def member_folder(folder: Path, member: int) -> Path:
    """Checkpoint folder of ensemble member ``member`` of the run in ``folder`` (member 0:
    ``folder`` itself)."""
    return Path(folder) if member == 0 else Path(folder) / MEMBER_DIR / f"m{member}"


def member_paths(folder: Path) -> list[Path]:
    """The final models of the ensemble members other than the run itself kept under
    ``folder`` (``members/m<j>/model.zip``), in member order (none: ``[]``)."""
    found = list((Path(folder) / MEMBER_DIR).glob("m*/" + CHECKPOINT_MODEL))
    numbered = [(p.parent.name[1:], p) for p in found]
    bad = [p for key, p in numbered if not key.isdigit()]
    if bad:
        raise ConfigError(
            f"ensemble member {str(bad[0].parent)!r}: expected a folder named m<j> with j in digits"
        )
    return [p for _, p in sorted((int(k), p) for k, p in numbered)]


class CheckpointCallback(BaseCallback):
    """Save a checkpoint every ``every`` timesteps; with ``keep``, also keep a copy of each
    one as ``snapshots/model_<steps>.zip`` (the policies the run passed through, which
    :class:`agents.guard.GuardedPolicy` can choose among per SKU)."""

    def __init__(self, folder: Path, config: PPOConfig, every: int, keep: bool = False) -> None:
        super().__init__()
        self.folder = folder
        self.config = config
        self.every = every
        self.keep = keep
        self._next = 0

    def _on_training_start(self) -> None:
        self._next = (self.num_timesteps // self.every + 1) * self.every if self.every else 0

    def _on_step(self) -> bool:
        if self.every and self.num_timesteps >= self._next:
            save_checkpoint(self.model, self.folder, self.config)
            if self.keep:
                keep_snapshot(self.folder, int(self.num_timesteps))
            self._next += self.every
        return True


def keep_snapshot(folder: Path, steps: int) -> Path:
    """Copy ``folder``'s ``model.zip`` to ``snapshots/model_<steps>.zip`` (atomically)."""
    target = Path(folder) / SNAPSHOT_DIR / f"model_{steps:012d}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.write_bytes((Path(folder) / CHECKPOINT_MODEL).read_bytes())
    return target


#: Seconds between two progress lines of a training run.
PROGRESS_LOG_SECONDS = 30.0


class ProgressCallback(BaseCallback):
    """Report training progress: a bar (when :mod:`ingest.progress` shows bars) and, every
    ``log_every`` seconds, a log line with the steps done, steps/s and the time left.

    Parameters
    ----------
    total_timesteps : int
        The step count training stops at.
    log_every : float, optional
        Seconds between two log lines (a run shorter than this logs none); default
        :data:`PROGRESS_LOG_SECONDS`.
    """

    def __init__(self, total_timesteps: int, log_every: float | None = None) -> None:
        super().__init__()
        self.total_timesteps = int(total_timesteps)
        self.log_every = PROGRESS_LOG_SECONDS if log_every is None else float(log_every)
        self.progress: Progress | None = None

    def _on_training_start(self) -> None:
        # Training stops after the first whole rollout that reaches the budget, so the count
        # ends at the next multiple of n_steps x n_envs past the start.
        start = int(self.num_timesteps)
        rollout = int(getattr(self.model, "n_steps", 1)) * int(getattr(self.model, "n_envs", 1))
        total = start + -(-max(self.total_timesteps - start, 0) // rollout) * rollout
        self.progress = Progress(
            total,
            desc="ppo",
            unit="step",
            logger=log,
            log_every=self.log_every,
            start=start,
        )

    def _on_step(self) -> bool:
        if self.progress is not None:
            self.progress.set_count(int(self.num_timesteps))
        return True

    def _on_training_end(self) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None


@dataclass
class TrainResult:
    """What :func:`train_ppo` returns."""

    model: MaskablePPO
    num_timesteps: int
    resumed_from: int
    wall_seconds: float


def train_ppo(
    config: PPOConfig,
    rules: RulesConfig,
    catalog: Catalog | None = None,
    *,
    checkpoint_dir: Path | None = None,
    logger: Logger | None = None,
    callbacks: list[BaseCallback] | None = None,
    catalog_fn: Callable[[int, np.random.Generator], Catalog] | None = None,
    keep_snapshots: bool = False,
) -> TrainResult:
    """Train (or resume) a masked PPO policy.

    Parameters
    ----------
    config : PPOConfig
    rules : RulesConfig
        The action grid and business rules (one policy per rule set).
    catalog : Catalog, optional
        SKUs to draw from. When ``None``, ``catalog_fn(config.n_catalog_skus, rng)`` builds
        one (``rng`` from the run seed); one of the two is required.
    checkpoint_dir : path, optional
        Where checkpoints go. When it holds one, training resumes from its step count.
    logger : stable_baselines3 Logger, optional
        E.g. one with :class:`experiments.mlflow_writer.MLflowOutputFormat`.
    callbacks : list of BaseCallback, optional
        Extra callbacks (evaluation, learning curves).
    catalog_fn : callable, optional
        ``catalog_fn(n_skus, rng) -> Catalog``.
    keep_snapshots : bool
        Keep every checkpoint (``config.checkpoint_every``) and the final model under
        ``checkpoint_dir/snapshots`` (:func:`snapshot_paths`); training is the same.

    Returns
    -------
    TrainResult
    """
    if catalog is None:
        if catalog_fn is None:
            raise ConfigError("train_ppo needs a catalog or a catalog_fn to draw SKUs from")
        catalog = catalog_fn(
            config.n_catalog_skus, np.random.default_rng(_child_seeds(config.seed)[1])
        )
    state = load_checkpoint_state(checkpoint_dir) if checkpoint_dir is not None else None
    resumed_from = 0
    if state is not None and checkpoint_dir is not None:
        resumed_from = int(state["num_timesteps"])
        # A new env stream for the resumed part, so it does not replay the first SKUs.
        env_seed = int(np.random.SeedSequence([config.seed, resumed_from]).generate_state(1)[0])
        env = make_training_env(config, rules, catalog, seed=env_seed)
        model = load_model(
            Path(checkpoint_dir) / CHECKPOINT_MODEL, env=env, device=resolve_device(config.device)
        )
        log.info("resuming from %s steps", f"{resumed_from:,}")
    else:
        env = make_training_env(config, rules, catalog)
        model = build_model(config, env)
    # Without a logger of its own, SB3 configures one that creates an empty SB3-<time> folder
    # in the temp directory on every run; a logger with no outputs writes nothing.
    model.set_logger(logger if logger is not None else Logger(folder=None, output_formats=[]))
    remaining = config.total_timesteps - resumed_from
    t0 = time.perf_counter()
    cbs: list[BaseCallback] = [ProgressCallback(config.total_timesteps)]
    if checkpoint_dir is not None and config.checkpoint_every:
        cbs.append(
            CheckpointCallback(checkpoint_dir, config, config.checkpoint_every, keep=keep_snapshots)
        )
    cbs.extend(callbacks or [])
    if remaining > 0:
        model.learn(
            total_timesteps=remaining,
            callback=CallbackList(cbs),
            reset_num_timesteps=resumed_from == 0,
            progress_bar=False,
        )
    if checkpoint_dir is not None:
        save_checkpoint(model, checkpoint_dir, config)
        if keep_snapshots:
            keep_snapshot(checkpoint_dir, int(model.num_timesteps))
    env.close()
    return TrainResult(
        model=model,
        num_timesteps=int(model.num_timesteps),
        resumed_from=resumed_from,
        wall_seconds=time.perf_counter() - t0,
    )


class PPOPolicy(Policy):
    """A trained ``MaskablePPO`` model behind the shared :class:`~agents.policy.Policy` API.

    Acts greedily (the most likely allowed action), so evaluation is deterministic given the
    demand draws.

    Parameters
    ----------
    model : MaskablePPO
    name : str
        Name in tables and MLflow tags.

    Attributes
    ----------
    budget_prior : str or None
        ``PPOConfig.budget_prior`` of a model trained with a shared budget (saved with it;
        ``None`` otherwise, and for models saved before it was recorded, which started from
        the single multiplier's prices when they read slot prices).
    """

    requires_context = False

    def __init__(self, model: MaskablePPO, name: str = "ppo") -> None:
        self.model = model
        self.name = name
        self.budget_prior: str | None = getattr(model, "budget_prior", None)
        # A model trained with the fluid hint reads the SKU's parameters from the context.
        dim = int(model.observation_space.shape[0])  # type: ignore[index]
        self.n_features = dim
        if dim < OBS_DIM + (len(HINT_FIELDS) if dim > OBS_DIM else 0):
            raise ConfigError(
                f"PPO model expects {dim} observation features; this version builds "
                f"{OBS_DIM} (+ the fluid hint): retrain it"
            )
        self.requires_context = dim != OBS_DIM

    def __getstate__(self) -> dict[str, Any]:
        # The SB3 model holds its training env and logger, which do not pickle: a policy sent
        # to another process (a worker of the run's engine) carries its saved model instead.
        buf = io.BytesIO()
        self.model.save(buf)
        return {**self.__dict__, "model": buf.getvalue()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        model = MaskablePPO.load(io.BytesIO(state["model"]), device="cpu")
        self.__dict__.update({**state, "model": model})

    @classmethod
    def load(cls, path: str | Path, name: str = "ppo", device: str = "cpu") -> PPOPolicy:
        """Load a policy from a saved model zip or a checkpoint folder.

        Raises
        ------
        ConfigError
            When the file does not exist or is not a readable SB3 model zip.
        """
        p = Path(path)
        if p.is_dir():
            p = p / CHECKPOINT_MODEL
        return cls(load_model(p, device=device), name=name)

    def act(
        self,
        observations: np.ndarray,
        masks: np.ndarray,
        context: PolicyContext | None = None,
    ) -> np.ndarray:
        obs = np.asarray(observations, dtype=np.float32)
        base = obs.shape[1]  # the env's own fields (more in the learning market)
        if self.n_features != base:
            ctx = self._need_context(context)
            values = self.n_features == base + hint_dim(ctx.rules, values=True)
            if not values and self.n_features != base + hint_dim(ctx.rules, values=False):
                raise ConfigError(
                    f"PPO model expects {self.n_features} observation features; with "
                    f"{ctx.rules.n_actions} actions and the env's {base} this version builds "
                    f"{base} + {hint_dim(ctx.rules)} (fluid values) or + "
                    f"{hint_dim(ctx.rules, values=False)}: was it trained for other rules or "
                    f"another market?"
                )
            obs = augment(obs, ctx, masks, values=values)
        actions, _ = self.model.predict(
            obs, deterministic=True, action_masks=np.asarray(masks, dtype=bool)
        )
        return np.asarray(actions, dtype=np.int64).reshape(-1)
