"""Model weights: a safetensors file of tensors beside a JSON file of the config and provenance.

``<name>.safetensors`` holds only tensors (nothing is unpickled when loading), ``<name>.json`` holds
``{"config": {...EGRConfig...}, "schema": {...}, "trained": bool, "description": str, ...}``. ``schema`` is
the graph feature layout the weights were trained on (:class:`egr.graph.GraphSchema`): the model refuses a
graph of another layout. A JSON without one (written before schemas were stored) gets the layout this egr
builds with its ``node_in``/``edge_in``, and is refused where there is none. The default model ships in
``egr/data/``; its JSON says whether it is trained.

Importing torch takes seconds, so only the functions that build, save or place a model import it.
:func:`read_model_info`, the provenance a resumed ``egr run`` checks its earlier outputs against, reads
the JSON and hashes the file.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from egr.gate import stored_margin
from egr.io import atomic_write_json, file_sha256

if TYPE_CHECKING:
    import torch

    from egr.graph import GraphSchema
    from egr.model import EGR

DEFAULT_WEIGHTS = Path(__file__).parent / "data" / "egr_default.safetensors"
SCHEMA_KEY = "schema"  # key of the graph feature layout in the weights' JSON sidecar


@dataclass(frozen=True)
class ModelInfo:
    """Provenance of loaded weights, reported in every ``<id>_scores.json``."""

    path: str
    sha256: str
    trained: bool
    description: str
    kind: str  # "all_atom" | "ca": which graph the model was built for
    gate_margin: float | None = None  # never-worse gate (egr.gate); None when the weights carry none


class DeviceError(ValueError):
    """A torch device that this machine or this build of torch does not have (a usage error)."""


def config_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def save_weights(model: EGR, weights: Path, trained: bool, description: str, extra: dict | None = None) -> None:
    """Write ``weights`` (safetensors) and its JSON sidecar."""
    from safetensors.torch import save_file

    weights = Path(weights)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    tmp = weights.with_name(f".{weights.name}.tmp")
    save_file(tensors, str(tmp))
    tmp.chmod(0o644)
    tmp.replace(weights)
    if model.schema is None:
        raise ValueError(f"node_in={model.config.node_in}, edge_in={model.config.edge_in} is no graph layout "
                         "this egr builds; such weights could never be used")
    sidecar = {"config": asdict(model.config), SCHEMA_KEY: model.schema.to_json(), "trained": trained,
               "description": description, **(extra or {})}
    atomic_write_json(config_path(weights), sidecar)


def _read_sidecar(weights: Path | None) -> tuple[Path, dict]:
    """The weights file (default: the shipped model) and its parsed JSON sidecar."""
    weights = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"weights file not found: {weights}")
    sidecar_path = config_path(weights)
    if not sidecar_path.is_file():
        raise FileNotFoundError(f"model config not found beside the weights: {sidecar_path}")
    return weights, json.loads(sidecar_path.read_text())


def sidecar_schema(sidecar: dict, weights: Path | str = "weights") -> GraphSchema:
    """The feature layout the weights were trained on: the sidecar's own, or (older sidecars without one)
    the layout this egr builds with the config's ``node_in``/``edge_in``. ValueError where there is none,
    or where the stored layout's widths disagree with the config's."""
    from egr.graph import GRAPH_SCHEMAS, GraphSchema, layout_of

    config = sidecar.get("config", {})
    widths = (config.get("node_in"), config.get("edge_in"))
    if SCHEMA_KEY not in sidecar:
        schema = layout_of(*widths)
        if schema is None:
            known = ", ".join(f"{s.kind} {s.node_in}/{s.edge_in}" for s in GRAPH_SCHEMAS.values())
            raise ValueError(f"{config_path(Path(weights))}: no feature schema, and node_in/edge_in "
                             f"{widths[0]}/{widths[1]} match no graph layout this egr builds ({known})")
        return schema
    try:
        schema = GraphSchema.from_json(sidecar[SCHEMA_KEY])
    except ValueError as exc:
        raise ValueError(f"{config_path(Path(weights))}: {exc}") from None
    if (schema.node_in, schema.edge_in) != widths:
        raise ValueError(f"{config_path(Path(weights))}: the feature schema ({schema.node_in} node, {schema.edge_in} "
                         f"edge features) disagrees with node_in/edge_in {widths[0]}/{widths[1]}")
    return schema


def _model_info(weights: Path, sidecar: dict, gate: bool, schema: GraphSchema) -> ModelInfo:
    return ModelInfo(
        path=str(weights),
        sha256=file_sha256(weights),
        trained=bool(sidecar.get("trained", False)),
        description=str(sidecar.get("description", "")),
        kind=schema.kind,
        gate_margin=stored_margin(sidecar) if gate else None,
    )


def read_model_info(weights: Path | None = None, gate: bool = True) -> ModelInfo:
    """Provenance of ``weights`` (default: the shipped model) as :func:`load_model` reports it, from the
    file's hash and its JSON sidecar, without importing torch."""
    weights, sidecar = _read_sidecar(weights)
    return _model_info(weights, sidecar, gate, sidecar_schema(sidecar, weights))


def load_model(weights: Path | None = None, device: str | torch.device = "cpu",
               gate: bool = True) -> tuple[EGR, ModelInfo]:
    """Build the EGR model described by ``weights``' JSON sidecar and load its tensors (default: shipped model).
    ``gate=False`` drops the sidecar's never-worse gate (``gate_margin`` None: raw refinement)."""
    from safetensors.torch import load_file

    from egr.model import EGR, EGRConfig

    weights, sidecar = _read_sidecar(weights)
    schema = sidecar_schema(sidecar, weights)  # read and checked once, for the model and its provenance
    model = EGR(EGRConfig(**sidecar["config"]), schema=schema)
    model.load_state_dict(load_file(str(weights)), strict=True)
    model.to(device).eval()
    return model, _model_info(weights, sidecar, gate, schema)


def check_device(device: str) -> None:
    """Raise DeviceError unless ``device`` is a cpu, cuda or mps device that exists here. A malformed name,
    and CUDA with a torch wheel built for the CPU only (version ``…+cpu``), are refused before torch loads
    (seconds); anything else asks torch."""
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", device):
        raise DeviceError(f"{device!r}: use cpu, cuda, cuda:N or mps")
    if device.startswith("cuda"):
        try:
            version = metadata.version("torch")
        except metadata.PackageNotFoundError:
            version = ""
        if version.endswith("+cpu"):
            raise DeviceError(f"{device!r}: no such CUDA device here (torch {version} is built without CUDA); "
                              "use --device cpu")
    import torch

    parsed = torch.device(device)
    if parsed.type == "cuda" and (parsed.index or 0) >= torch.cuda.device_count():
        build = "" if torch.backends.cuda.is_built() else f" (torch {torch.__version__} is built without CUDA)"
        raise DeviceError(f"{device!r}: no such CUDA device here{build}; use --device cpu")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"{device!r}: MPS is not available on this machine; use --device cpu")
