"""The proxies by name: what each needs (a batch of data) and which backends compute it; validation."""

from __future__ import annotations

from collections.abc import Sequence

from nas.core.errors import UserError

# Every proxy is "higher is better"; a degenerate candidate or a non-finite score gets WORST (finite, so
# results stay valid JSON, and below any real score of every proxy).
WORST = -1e30

DATA_FREE = ("synflow", "params", "macs")
NEEDS_DATA = ("snip", "grad_norm", "fisher", "jacob_cov", "naswot")
VOTE = "vote"
VOTE_MEMBERS = ("synflow", "jacob_cov", "snip")
PROXIES = (*DATA_FREE, *NEEDS_DATA, VOTE)
BACKENDS = {
    "torch": frozenset(PROXIES),
    "jax": frozenset(("synflow", "naswot", "params", "macs")),
}


def expand(proxies: Sequence[str]) -> list[str]:
    """The proxies to compute, in order, without repeats: ``vote`` stands for its three members."""
    out: list[str] = []
    for name in proxies:
        for item in (VOTE_MEMBERS if name == VOTE else (name,)):
            if item not in out:
                out.append(item)
    return out


def check(proxies: Sequence[str], batch_size: object, backend: str) -> list[str]:
    """Validate a request; returns the proxy names as a list. Raises a one-line ``UserError``."""
    if isinstance(proxies, str):
        proxies = [proxies]
    names = [str(p) for p in proxies]
    if not names:
        raise UserError(f"evaluator.proxies is empty; valid choices: {', '.join(PROXIES)}")
    for name in names:
        if name not in PROXIES:
            raise UserError(f"unknown proxy {name!r}; valid choices: {', '.join(PROXIES)}")
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r} for proxies; valid choices: {', '.join(BACKENDS)}")
    missing = [n for n in expand(names) if n not in BACKENDS[backend]]
    if missing:
        raise UserError(f"proxy {missing[0]!r} has no {backend} implementation; "
                        f"{backend} computes: {', '.join(sorted(BACKENDS[backend]))}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise UserError(f"evaluator.batch_size must be a positive integer, got {batch_size!r}")
    return names
