"""Whether a run's files hold what its summary.json promises (the contract in
``dropcli.store.layout``), checked cheaply enough for every status read: one small YAML
file, file sizes and a zip's directory; no array is loaded."""

from __future__ import annotations

from pathlib import Path

from dropcli.store.files import load_json, read_config
from dropcli.store.layout import CONFIG_FILE, EXPECTATION_FILE, METRICS_FILE, PARAMS_FILE, TRAINED


def damage(run_dir: Path, status: str) -> tuple[str, str] | None:
    """(file name, what is wrong with it) for the first file of ``run_dir`` that does not
    hold what a summary.json saying ``status`` promises; None if all do."""
    run_dir = Path(run_dir)
    config, problem = read_config(run_dir)
    if problem is not None:
        return CONFIG_FILE, problem
    if status not in TRAINED:
        return None
    try:
        if (run_dir / METRICS_FILE).stat().st_size == 0:
            return METRICS_FILE, "empty"
    except FileNotFoundError:
        return METRICS_FILE, "missing"
    except OSError as e:
        return METRICS_FILE, f"cannot read ({e.strerror})"
    names = param_names(config)
    if names is None:
        return CONFIG_FILE, "no model.hidden_dims list (the layer sizes params.npz is checked against)"
    if (problem := _npz_problem(run_dir / PARAMS_FILE, names)) is not None:
        return PARAMS_FILE, problem
    expectation, problem = load_json(run_dir / EXPECTATION_FILE)
    if problem is not None or expectation is None:
        return EXPECTATION_FILE, problem or "missing"
    return None


def param_names(config: dict) -> list[str] | None:
    """The arrays of the config's network, named as ``nn.architecture.init_params`` names them
    (W1, b1, gamma1, beta1, running_mean1, running_var1, ..., WL, bL); None if the config
    has no ``model.hidden_dims`` list."""
    model = config.get("model")
    hidden = model.get("hidden_dims") if isinstance(model, dict) else None
    if not isinstance(hidden, list) or not hidden:
        return None
    norm = model.get("normalization")
    layers = len(hidden) + 1
    names = []
    for i in range(1, layers + 1):
        names += [f"W{i}", f"b{i}"]
        if i < layers and norm in ("batchnorm", "layernorm"):
            names += [f"gamma{i}", f"beta{i}"]
            if norm == "batchnorm":
                names += [f"running_mean{i}", f"running_var{i}"]
    return names


def _npz_problem(path: Path, names: list[str]) -> str | None:
    """What is wrong with params.npz at ``path``, read from its zip directory only."""
    import zipfile

    try:
        if path.stat().st_size == 0:
            return "empty"
        with zipfile.ZipFile(path) as z:
            members = set(z.namelist())
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"cannot read ({e.strerror})"
    except Exception:  # noqa: BLE001 - a damaged zip fails in many ways (BadZipFile, struct.error); all mean this
        return "not a .npz file (not a zip archive, or truncated)"
    lacking = [n for n in names if f"{n}.npy" not in members]
    if lacking:
        shown = ", ".join(lacking[:4]) + (f" and {len(lacking) - 4} more" if len(lacking) > 4 else "")
        return f"has no {shown} (arrays the config's network needs)"
    return None
