"""Robot-side client for a policy served by Triton, and the action-chunk queue robots run.

    policy = TritonPolicy("10.0.0.5:8001", model_name="pi0")        # gRPC; "http://host:8000" for HTTP
    chunk = policy.infer({"images": {"cam_high": frame}, "state": qpos, "prompt": "fold"})["actions"]

    runner = ChunkRunner(policy, replan_steps=10)                    # at 50 Hz: replan every 0.2 s
    action = runner.step(observation)                                # one action per control step

``TritonPolicy`` satisfies the same ``Policy`` protocol as in-process policies, so
``vlaops evaluate --server`` drives a served model through the exact code path of a checkpoint.
Images go as uint8 of any size: the server-side policy owns every transform. When the model
advertises its input size (``config.pbtxt`` parameter ``image_size``) the client first letterboxes
frames to it with the policy's own function, which the policy then leaves as is: the same answer,
~18× fewer bytes for 480×640 frames at 224 (2.7 MB → 150 KB a camera). ``letterbox=False`` sends
frames as they are.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from vlaops.data import transforms
from vlaops.errors import VlaopsError

HELP = "send one observation to a served policy; print the action chunk and the latency"


def configure(p: argparse.ArgumentParser) -> None:
    p.epilog = (
        "examples:\n"
        "  vlaops infer --server 127.0.0.1:8001                 # gRPC, random observation\n"
        "  vlaops infer --server http://127.0.0.1:8000 --model-name pi0 --prompt 'fold the towel'\n"
        "  vlaops infer --server 127.0.0.1:8001 --dataset gs://data/transfer_cube --episode 3 --frame 120\n"
    )
    p.add_argument("--server", required=True, help="HOST:PORT (gRPC) or http://HOST:PORT")
    p.add_argument("--model-name", default="pi0")
    p.add_argument(
        "--prompt", help="the task (default: the dataset frame's task, or 'do the task')"
    )
    p.add_argument("--image-size", default="480x640", help="HxW of the random camera frames")
    p.add_argument(
        "--dataset", help="send a recorded frame instead: a LeRobot dataset (path or gs://)"
    )
    p.add_argument("--episode", type=int, default=0, help="with --dataset: the episode index")
    p.add_argument("--frame", type=int, default=0, help="with --dataset: the frame in the episode")
    p.add_argument("--repeat", type=int, default=5, help="requests to time (the first warms up)")


def run(args: argparse.Namespace) -> None:
    policy = TritonPolicy(args.server, args.model_name)
    recorded = None
    if args.dataset:
        obs, recorded = dataset_observation(args.dataset, args.episode, args.frame, policy.metadata)
        obs["prompt"] = args.prompt or obs["prompt"]
    else:
        h, w = (int(v) for v in args.image_size.split("x"))
        obs = random_observation(policy.metadata, args.prompt or "do the task", (h, w))
    times = []
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        actions = policy.infer(obs)["actions"]
        times.append((time.perf_counter() - t0) * 1e3)
    np.set_printoptions(precision=3, suppress=True, linewidth=120)
    print(f"model {args.model_name} on {args.server}: actions {actions.shape}")
    print(actions[: min(5, len(actions))])
    if recorded is not None:
        print(f"recorded action at episode {args.episode}, frame {args.frame}:")
        print(recorded[None])
    steady = times[1:] or times
    print(
        f"latency: first {times[0]:.1f} ms, then p50 {np.median(steady):.1f} ms over {len(steady)} requests"
    )


def dataset_observation(
    uri: str, episode: int, frame: int, metadata: dict
) -> tuple[dict, np.ndarray]:
    """A recorded frame (cameras, state, task) shaped for the served model, and the recorded
    action. The dataset must be of the robot the model was trained for: its cameras and state."""
    import tempfile
    from pathlib import Path

    from vlaops.data import lerobot_io

    root = lerobot_io.local_copy(uri, Path(tempfile.gettempdir()) / "vlaops-infer")
    obs, action = lerobot_io.observation(root, episode, frame)
    missing = [c for c in metadata["cameras"] if c not in obs["images"]]
    if missing:
        raise VlaopsError(
            f"{uri} has cameras {sorted(obs['images'])}; the model takes {metadata['cameras']} "
            f"(missing {missing})"
        )
    if len(obs["state"]) != metadata["state_dim"]:
        raise VlaopsError(
            f"{uri}: state has {len(obs['state'])} dims; the model takes {metadata['state_dim']}"
        )
    obs["images"] = {c: obs["images"][c] for c in metadata["cameras"]}
    return obs, action


def random_observation(
    metadata: dict, prompt: str, image_size: tuple[int, int] = (480, 640), seed: int = 0
) -> dict:
    """An observation shaped the way the model's metadata says (cameras, state size), as a
    robot client sends it: raw uint8 frames, the raw state, the prompt."""
    rng = np.random.default_rng(seed)
    return {
        "images": {
            c: rng.integers(0, 255, (*image_size, 3), np.uint8) for c in metadata["cameras"]
        },
        "state": rng.normal(size=metadata["state_dim"]).astype(np.float32),
        "prompt": prompt,
    }


class TritonPolicy:
    def __init__(
        self, server: str, model_name: str = "pi0", timeout: float = 30.0, letterbox: bool = True
    ):
        self.model_name, self.timeout = model_name, timeout
        if server.startswith(("http://", "https://")):
            import tritonclient.http as tc

            self._client = tc.InferenceServerClient(
                server.split("://", 1)[1], ssl=server.startswith("https"), network_timeout=timeout
            )
        else:
            import tritonclient.grpc as tc

            self._client = tc.InferenceServerClient(server.removeprefix("grpc://"))
        self._tc = tc
        try:
            meta = self._client.get_model_metadata(model_name)
            config = self._client.get_model_config(model_name, **self._as_json)
        except Exception as e:
            raise VlaopsError(
                f"cannot reach model {model_name!r} on Triton at {server}: {e}"
            ) from None
        inputs = (
            meta["inputs"]
            if isinstance(meta, dict)
            else [{"name": i.name, "shape": list(i.shape)} for i in meta.inputs]
        )
        outputs = (
            meta["outputs"]
            if isinstance(meta, dict)
            else [{"name": o.name, "shape": list(o.shape)} for o in meta.outputs]
        )
        shapes = {i["name"]: [int(d) for d in i["shape"]] for i in inputs}
        out_shape = next(o for o in outputs if o["name"] == "actions")["shape"]
        self.metadata = {
            "cameras": [n.removeprefix("image_") for n in shapes if n.startswith("image_")],
            "state_dim": shapes["state"][-1],
            "action_horizon": int(out_shape[-2]),
            "action_dim": int(out_shape[-1]),
        }
        size = config.get("config", config).get("parameters", {}).get("image_size", {})
        self.image_size = int(size["string_value"]) if letterbox and size else None

    @property
    def _as_json(self) -> dict:
        return {"as_json": True} if self._tc.__name__.endswith("grpc") else {}

    def reset(self, task: str, seed: int) -> None:
        """Served policies keep no per-episode state."""

    def infer(self, observation: dict) -> dict:
        return {"actions": self.infer_batch([observation])[0]}

    def infer_batch(self, observations: list[dict]) -> np.ndarray:
        tensors = encode_batch(observations, self.metadata["cameras"], self.image_size)
        inputs = []
        for name, arr in tensors.items():
            t = self._tc.InferInput(
                name, list(arr.shape), "UINT8" if arr.dtype == np.uint8 else "FP32"
            )
            t.set_data_from_numpy(arr)
            inputs.append(t)
        kwargs = {"client_timeout": self.timeout} if self._tc.__name__.endswith("grpc") else {}
        try:
            result = self._client.infer(self.model_name, inputs, **kwargs)
        except Exception as e:
            raise VlaopsError(f"inference failed: {e}") from None
        return result.as_numpy("actions")


def encode_batch(
    observations: list[dict], cameras: list[str], image_size: int | None = None
) -> dict[str, np.ndarray]:
    """Observations → wire tensors (see ``vlaops.serve.repository``). Cameras must share a size
    within one request unless ``image_size`` is given (frames are then letterboxed to it); a
    camera absent from every observation is left out (masked)."""
    out = {}
    for cam in cameras:
        frames = [o["images"].get(cam) for o in observations]
        if all(f is None for f in frames):
            continue
        if any(f is None for f in frames):
            raise VlaopsError(f"camera {cam!r} is missing from some observations of the batch")
        if image_size:
            frames = [_letterbox(cam, f, image_size) for f in frames]
        out[f"image_{cam}"] = np.ascontiguousarray(np.stack(frames), dtype=np.uint8)
    out["state"] = np.stack([np.asarray(o["state"], np.float32) for o in observations])
    prompts = [str(o.get("prompt") or "").encode() for o in observations]
    width = max(1, max(len(p) for p in prompts))
    out["prompt"] = np.zeros((len(prompts), width), np.uint8)
    for i, p in enumerate(prompts):
        out["prompt"][i, : len(p)] = np.frombuffer(p, np.uint8)
    return out


def _letterbox(cam: str, frame, size: int) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise VlaopsError(f"camera {cam!r}: expected an H×W×3 image, got shape {frame.shape}")
    return transforms.resize_with_pad(frame.astype(np.uint8, copy=False), size)


class ChunkRunner:
    """Executes action chunks: asks the policy every ``replan_steps`` steps, plays the chunk's
    first actions meanwhile (openpi's client: 10 of 50 at 50 Hz)."""

    def __init__(self, policy, replan_steps: int = 10):
        self.policy, self.replan_steps = policy, replan_steps
        self._chunk: np.ndarray | None = None
        self._i = 0

    def reset(self) -> None:
        self._chunk, self._i = None, 0

    def step(self, observation: dict) -> np.ndarray:
        if self._chunk is None or self._i >= min(self.replan_steps, len(self._chunk)):
            self._chunk, self._i = np.asarray(self.policy.infer(observation)["actions"]), 0
        action = self._chunk[self._i]
        self._i += 1
        return action
