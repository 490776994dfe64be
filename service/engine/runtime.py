"""onnxruntime sessions for one bundle: the encoder and the one-step decoder.

This is the only module under `service/` that imports onnxruntime. It checks each graph's
inputs and outputs against the manifest before anything is served, and reports the
execution provider each session really got (onnxruntime silently falls back to CPU when
CUDA cannot be loaded).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from service import bundle as contract
from service.bundle import BundleError, BundleManifest
from service.engine.shortlist import Shortlist, read_shortlist

log = logging.getLogger(__name__)

_PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_DEVICE_OF_PROVIDER = {
    "TensorrtExecutionProvider": "cuda",
    "CUDAExecutionProvider": "cuda",
    "CPUExecutionProvider": "cpu",
}

# A decoder state as the runtime hands it back: a host array, or (with IO binding) an
# onnxruntime value that stays on the device until the batch's rows change.
State = Any


@dataclass(frozen=True)
class RuntimeOptions:
    providers: tuple[str, ...]  # "tensorrt" / "cuda" / "cpu" in order of preference
    cuda_device_id: int = 0
    intra_op_threads: int = 0  # 0 = onnxruntime's default
    inter_op_threads: int = 0
    cuda_mem_limit: int = 0  # bytes the CUDA arena may take; 0 = no limit
    cuda_use_tf32: bool = True  # TF32 matrix products on Ampere and newer
    io_binding: bool | None = None  # None = on when the session runs on a GPU
    # onnxruntime's idle pool threads busy-wait for the next operator (its default); off,
    # they sleep. Off measured 1.46x the decoding throughput of on, outputs identical, on
    # the shared 2-core box of docs/benchmarks.md (OPUS-MT shape, greedy and beam 4 at
    # batch 32): spinning threads take the cores the engine's own numpy work between
    # steps, and other processes, need.
    spin_wait: bool = False


@dataclass(frozen=True)
class EncoderOutput:
    memory: np.ndarray  # (B, S, H) float
    states: dict[str, np.ndarray]  # state name -> initial value, batch on its batch_axis


@dataclass(frozen=True)
class VocabularyRows:
    """A step restricted by a lexical shortlist: log-probs over `ids` only."""

    ids: np.ndarray  # (K,) int64 sorted token ids, the columns of the step's log_probs
    mask: np.ndarray  # (B, K) bool: the columns each row may choose (its own request's)


@dataclass(frozen=True)
class StepOutput:
    log_probs: np.ndarray  # (B, V) float32 on the host; (B, K) over VocabularyRows.ids
    attention: np.ndarray  # (B, S) float32, on the host
    # state name -> value for the next step (device-resident with IO binding); a constant
    # state is the very value the step was given
    states: dict[str, State]


_NVIDIA_DRIVER = "libcuda.so.1"
_NVML = "libnvidia-ml.so.1"


@functools.cache
def _cuda_unusable(device_id: int) -> str | None:
    """Why CUDA cannot run here, or None when it may. Asked before onnxruntime is, because
    onnxruntime's CUDA provider prints a screen of load errors on a machine without a GPU.

    Uses only the driver's version query and NVML, never cuInit: a CUDA context made here
    would not survive a fork into an engine process.
    """
    if sys.platform != "linux":
        return None  # onnxruntime finds out for itself
    try:
        driver = ctypes.CDLL(_NVIDIA_DRIVER)
    except OSError:
        return f"no NVIDIA driver here ({_NVIDIA_DRIVER} cannot be loaded)"
    version = ctypes.c_int()
    if driver.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return "the NVIDIA driver did not report its version"
    try:
        nvml = ctypes.CDLL(_NVML)
    except OSError:
        return None  # no NVML to count devices with; onnxruntime will tell
    count = ctypes.c_uint()
    if nvml.nvmlInit_v2() != 0:
        return "NVML could not be initialised: the driver sees no usable GPU"
    try:
        if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            return "NVML could not count the GPUs"
    finally:
        nvml.nvmlShutdown()
    if device_id >= count.value:
        return f"no CUDA device {device_id} ({count.value} found)"
    return None


def _provider_list(options: RuntimeOptions) -> list[str | tuple[str, dict[str, object]]]:
    return _choose_providers(options)[0]


def _choose_providers(
    options: RuntimeOptions,
) -> tuple[list[str | tuple[str, dict[str, object]]], tuple[str, ...]]:
    """The providers onnxruntime is asked for, and why preferred ones were left out."""
    available = set(ort.get_available_providers())
    chosen: list[str | tuple[str, dict[str, object]]] = []
    skipped: list[str] = []
    for short in options.providers:
        name = _PROVIDER_NAMES[short]
        if name not in available:
            skipped.append(f"{short} left out: this onnxruntime build has no {name}")
            continue
        if short in {"cuda", "tensorrt"}:
            reason = _cuda_unusable(options.cuda_device_id)
            if reason is not None:
                skipped.append(f"{short} left out: {reason}")
                continue
        if short == "cuda":
            cuda: dict[str, object] = {
                "device_id": options.cuda_device_id,
                "use_tf32": int(options.cuda_use_tf32),
            }
            if options.cuda_mem_limit:
                cuda["gpu_mem_limit"] = options.cuda_mem_limit
            chosen.append((name, cuda))
        elif short == "tensorrt":
            chosen.append((name, {"device_id": options.cuda_device_id}))
        else:
            chosen.append(name)
    if not chosen:
        raise BundleError(
            f"none of the providers {list(options.providers)} can run here: {'; '.join(skipped)}"
        )
    return chosen, tuple(skipped)


def _log_provider(manifest: BundleManifest, provider: str, options: RuntimeOptions) -> None:
    """One line per model: the provider its sessions got, and why."""
    chosen, skipped = _choose_providers(options)
    asked = [entry if isinstance(entry, str) else entry[0] for entry in chosen]
    model = f"model {manifest.name} v{manifest.version} runs on {provider}"
    if provider != asked[0]:
        log.warning(
            "%s although %s was asked for first: onnxruntime could not create it (its own "
            "messages above say why, e.g. a missing CUDA or cuDNN library)",
            model,
            asked[0],
        )
    elif skipped:
        log.info("%s; %s", model, "; ".join(skipped))
    else:
        log.info("%s, the first of providers %s", model, list(options.providers))


def _session(path: Path, options: RuntimeOptions) -> ort.InferenceSession:
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = options.intra_op_threads
    session_options.inter_op_num_threads = options.inter_op_threads
    session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session_options.log_severity_level = 3  # our own log says which provider was used
    spin = "1" if options.spin_wait else "0"
    session_options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    session_options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    try:
        return ort.InferenceSession(
            str(path), sess_options=session_options, providers=_provider_list(options)
        )
    except Exception as exc:  # onnxruntime raises several unrelated types here
        raise BundleError(f"{path}: onnxruntime cannot load it: {exc}") from exc


def _check_names(path: Path, kind: str, actual: list[str], expected: list[str]) -> None:
    missing = [n for n in expected if n not in actual]
    extra = [n for n in actual if n not in expected]
    if missing or extra:
        raise BundleError(
            f"{path}: {kind} {actual} do not match the manifest's contract {expected}"
            + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else "")
        )


class OnnxSeq2Seq:
    """The two sessions of one bundle, called with numpy arrays."""

    def __init__(self, bundle_dir: Path, manifest: BundleManifest, options: RuntimeOptions):
        self.manifest = manifest
        self.state_names = tuple(s.name for s in manifest.states)
        self.updated_names = contract.updated_states(manifest.states)  # new_state_ outputs
        encoder_path = bundle_dir / contract.ENCODER_FILE
        decoder_path = bundle_dir / contract.DECODER_FILE
        self._encoder = _session(encoder_path, options)
        self._decoder = _session(decoder_path, options)
        self._check_contract(encoder_path, decoder_path)
        # A lexical shortlist: its selections, and the decoder step that takes vocab ids.
        self.shortlist: Shortlist | None = None
        self._shortlist_decoder: ort.InferenceSession | None = None
        if manifest.shortlist is not None:
            spec = manifest.shortlist
            self.shortlist = read_shortlist(
                bundle_dir / spec.file,
                source_vocab=spec.source_vocab_size,
                target_vocab=manifest.vocab_size,
                shared=spec.shared,
                verify_checksum=False,  # the manifest's sha256 already covers the file
            )
            path = bundle_dir / spec.decoder
            self._shortlist_decoder = _session(path, options)
            self._check_decoder(
                path, self._shortlist_decoder, (contract.DEC_VOCAB_IDS, contract.DEC_VOCAB_MASK)
            )
        self.provider = self._decoder.get_providers()[0]
        _log_provider(manifest, self.provider, options)
        self.device = _DEVICE_OF_PROVIDER.get(self.provider, "cpu")
        self._device_id = options.cuda_device_id if self.device == "cuda" else 0
        self.io_binding = (
            options.io_binding if options.io_binding is not None else self.device == "cuda"
        )
        # With IO binding, memory and mask are copied to the device once per batch
        # composition: the engine passes the very same host arrays while rows are unchanged.
        self._bound_inputs: dict[str, tuple[np.ndarray, Any]] = {}

    def _check_contract(self, encoder_path: Path, decoder_path: Path) -> None:
        states = self.state_names
        _check_names(
            encoder_path,
            "inputs",
            [i.name for i in self._encoder.get_inputs()],
            [contract.ENC_SRC_IDS, contract.ENC_SRC_LENGTHS],
        )
        _check_names(
            encoder_path,
            "outputs",
            [o.name for o in self._encoder.get_outputs()],
            [contract.ENC_MEMORY, *(contract.init_state_name(s) for s in states)],
        )
        self._check_decoder(decoder_path, self._decoder, ())

    def _check_decoder(
        self, path: Path, session: ort.InferenceSession, extra_inputs: tuple[str, ...]
    ) -> None:
        _check_names(
            path,
            "inputs",
            [i.name for i in session.get_inputs()],
            [
                contract.DEC_PREV_IDS,
                contract.DEC_MEMORY,
                contract.DEC_SRC_MASK,
                *(contract.state_input_name(s) for s in self.state_names),
                *extra_inputs,
            ],
        )
        _check_names(
            path,
            "outputs",
            [o.name for o in session.get_outputs()],
            [
                contract.DEC_LOG_PROBS,
                contract.DEC_ATTENTION,
                *(contract.state_output_name(s) for s in self.updated_names),
            ],
        )

    def encode(self, src_ids: np.ndarray, src_lengths: np.ndarray) -> EncoderOutput:
        """src_ids (B, S) int64 padded, src_lengths (B,) int64."""
        names = [contract.ENC_MEMORY, *(contract.init_state_name(s) for s in self.state_names)]
        outputs = self._encoder.run(
            names, {contract.ENC_SRC_IDS: src_ids, contract.ENC_SRC_LENGTHS: src_lengths}
        )
        return EncoderOutput(
            memory=outputs[0], states=dict(zip(self.state_names, outputs[1:], strict=True))
        )

    def to_host(self, state: State) -> np.ndarray:
        """A state as a host array (copies from the device when IO binding kept it there)."""
        return state if isinstance(state, np.ndarray) else np.asarray(state.numpy())

    def step(
        self,
        prev_ids: np.ndarray,
        memory: np.ndarray,
        src_mask: np.ndarray,
        states: dict[str, State],
        vocabulary: VocabularyRows | None = None,
    ) -> StepOutput:
        """One decoder step for the whole batch: prev_ids (B,), memory (B,S,H), mask (B,S);
        with `vocabulary` (a bundle with a shortlist), over its ids only."""
        if vocabulary is not None and self._shortlist_decoder is None:
            raise BundleError(f"model {self.manifest.name} has no shortlist decoder")
        if self.io_binding:
            return self._step_bound(prev_ids, memory, src_mask, states, vocabulary)
        feeds = {
            contract.DEC_PREV_IDS: prev_ids,
            contract.DEC_MEMORY: memory,
            contract.DEC_SRC_MASK: src_mask,
        }
        for name in self.state_names:
            feeds[contract.state_input_name(name)] = self.to_host(states[name])
        session = self._decoder
        if vocabulary is not None:
            assert self._shortlist_decoder is not None
            session = self._shortlist_decoder
            feeds[contract.DEC_VOCAB_IDS] = vocabulary.ids
            feeds[contract.DEC_VOCAB_MASK] = vocabulary.mask
        names = [
            contract.DEC_LOG_PROBS,
            contract.DEC_ATTENTION,
            *(contract.state_output_name(s) for s in self.updated_names),
        ]
        outputs = session.run(names, feeds)
        return StepOutput(
            log_probs=outputs[0].astype(np.float32, copy=False),
            attention=outputs[1].astype(np.float32, copy=False),
            states=self._next_states(states, outputs[2:]),
        )

    def _next_states(self, given: dict[str, State], updated: list[Any]) -> dict[str, State]:
        """Every state for the next step: the step's outputs, and constant states as given."""
        states = dict(given)
        states.update(zip(self.updated_names, updated, strict=True))
        return states

    def _device_value(self, name: str, array: np.ndarray) -> Any:
        """The device copy of a host input, reused while the engine passes the same array."""
        cached = self._bound_inputs.get(name)
        if cached is not None and cached[0] is array:
            return cached[1]
        value = ort.OrtValue.ortvalue_from_numpy(array, self.device, self._device_id)
        self._bound_inputs[name] = (array, value)
        return value

    def _step_bound(
        self,
        prev_ids: np.ndarray,
        memory: np.ndarray,
        src_mask: np.ndarray,
        states: dict[str, State],
        vocabulary: VocabularyRows | None,
    ) -> StepOutput:
        """The step with IO binding: states stay on the device from step to step."""
        session = self._decoder if vocabulary is None else self._shortlist_decoder
        assert session is not None
        binding = session.io_binding()
        if vocabulary is not None:
            binding.bind_cpu_input(contract.DEC_VOCAB_IDS, vocabulary.ids)
            binding.bind_cpu_input(contract.DEC_VOCAB_MASK, vocabulary.mask)
        binding.bind_cpu_input(contract.DEC_PREV_IDS, prev_ids)
        binding.bind_ortvalue_input(contract.DEC_MEMORY, self._device_value("memory", memory))
        binding.bind_ortvalue_input(contract.DEC_SRC_MASK, self._device_value("mask", src_mask))
        given: dict[str, State] = {}
        for name in self.state_names:
            value = states[name]
            if isinstance(value, np.ndarray):  # constant ones are copied once per batch
                value = ort.OrtValue.ortvalue_from_numpy(value, self.device, self._device_id)
            given[name] = value
            binding.bind_ortvalue_input(contract.state_input_name(name), value)
        binding.bind_output(contract.DEC_LOG_PROBS, "cpu")
        binding.bind_output(contract.DEC_ATTENTION, "cpu")
        for name in self.updated_names:
            binding.bind_output(contract.state_output_name(name), self.device, self._device_id)
        session.run_with_iobinding(binding)
        outputs = binding.get_outputs()
        return StepOutput(
            log_probs=outputs[0].numpy().astype(np.float32, copy=False),
            attention=outputs[1].numpy().astype(np.float32, copy=False),
            states=self._next_states(given, outputs[2:]),
        )
