"""The ALOHA bimanual sim (gym-aloha's MuJoCo scenes), stepped and rendered directly.

gym-aloha's ``AlohaEnv.step`` renders three 480×640 cameras per step with shadows and 4× MSAA
(200–370 ms on two CPU cores) and returns one. This wrapper loads the same scene XMLs, keeps
gym-aloha's action/state layout, object sampling (same seed → same object pose as gym-aloha) and
contact rewards, and renders only the cameras asked for, by default with shadows, reflections and
MSAA off (~13 ms per 480×640 frame). ``RenderConfig(published=True)`` renders the look of the
published datasets.

Action and state layout (14): left arm 6 joint angles (rad), left gripper (0 closed … 1 open),
right arm 6, right gripper. Control is 50 Hz: each step holds the action for 10 physics steps
of 2 ms.
"""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vlaops.errors import VlaopsError

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is first imported: headless rendering

import mujoco

ACTION_DIM = 14
FPS = 50
EPISODE_STEPS = 400  # scripted insertion succeeds only after step ~340; LeRobot evaluates 400
SUBSTEPS = 10  # physics steps (2 ms) per control step (20 ms)
MAX_REWARD = 4
CAMERAS = (
    "top",
    "left_wrist",
    "right_wrist",
    "angle",
    "front_close",
    "left_pillar",
    "right_pillar",
)

# Joint targets at reset (ALOHA layout; grippers as finger positions in metres).
START_ARM_POSE = (0.0, -0.96, 1.16, 0.0, -0.3, 0.0, 0.02239, -0.02239) * 2
# Finger position (m) of a fully closed / open puppet gripper: the 0…1 gripper range.
GRIPPER_CLOSED, GRIPPER_OPEN = 0.01844, 0.05800


def gripper_to_position(g):
    """Normalized gripper (0 closed … 1 open) → finger position in metres."""
    return GRIPPER_CLOSED + np.asarray(g) * (GRIPPER_OPEN - GRIPPER_CLOSED)


def gripper_from_position(x):
    return (np.asarray(x) - GRIPPER_CLOSED) / (GRIPPER_OPEN - GRIPPER_CLOSED)


def assets_dir() -> Path:
    import gym_aloha

    return Path(gym_aloha.__file__).parent / "assets"


def _transfer_cube_reward(contacts: set[frozenset[str]]) -> int:
    def touch(a, b):
        return frozenset((a, b)) in contacts

    right = touch("red_box", "vx300s_right/10_right_gripper_finger")
    left = touch("red_box", "vx300s_left/10_left_gripper_finger")
    on_table = touch("red_box", "table")
    if left:  # 3: the left finger touches the cube; 4: and the cube is off the table
        return 3 if on_table else 4
    if right:  # 1: the right finger touches the cube; 2: and the cube is lifted
        return 1 if on_table else 2
    return 0


def _insertion_reward(contacts: set[frozenset[str]]) -> int:
    sockets = [f"socket-{i}" for i in range(1, 5)]

    def touch(a, bs):
        return any(frozenset((a, b)) in contacts for b in bs)

    if touch("red_peg", ["pin"]):
        return 4
    lifted = not touch("red_peg", ["table"]) and not any(touch(s, ["table"]) for s in sockets)
    if touch("red_peg", sockets) and lifted:
        return 3
    grasped = touch("red_peg", ["vx300s_right/10_right_gripper_finger"]) and any(
        touch(s, ["vx300s_left/10_left_gripper_finger"]) for s in sockets
    )
    if grasped:
        return 2 if lifted else 1
    return 0


def _sample_cube(seed: int) -> np.ndarray:
    from gym_aloha import utils

    return utils.sample_box_pose(seed)


def _sample_peg_socket(seed: int) -> np.ndarray:
    from gym_aloha import utils

    return np.concatenate(utils.sample_insertion_pose(seed))


@dataclass(frozen=True)
class Task:
    name: str
    prompt: str  # the instruction a policy is given
    xml: str  # joint-controlled scene (what policies act in)
    ee_xml: str  # the same scene with mocap bodies welded to the grippers (the expert's scene)
    objects: tuple[str, ...]  # free joints of the objects, in the order ``sample`` returns them
    sample: Callable[[int], np.ndarray] = field(repr=False)  # seed → object poses (7 each)
    reward: Callable[[set[frozenset[str]]], int] = field(repr=False)  # contacts → 0…4


TASKS: dict[str, Task] = {
    "transfer_cube": Task(
        name="transfer_cube",
        prompt="Transfer the cube from the right arm to the left arm.",
        xml="bimanual_viperx_transfer_cube.xml",
        ee_xml="bimanual_viperx_end_effector_transfer_cube.xml",
        objects=("red_box_joint",),
        sample=_sample_cube,
        reward=_transfer_cube_reward,
    ),
    "insertion": Task(
        name="insertion",
        prompt="Insert the peg into the socket.",
        xml="bimanual_viperx_insertion.xml",
        ee_xml="bimanual_viperx_end_effector_insertion.xml",
        objects=("red_peg_joint", "blue_socket_joint"),
        sample=_sample_peg_socket,
        reward=_insertion_reward,
    ),
}


def get_task(name: str) -> Task:
    if name in TASKS:
        return TASKS[name]
    close = difflib.get_close_matches(name, TASKS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise VlaopsError(f"unknown sim task {name!r}{hint}: choose one of {', '.join(TASKS)}")


def check_cameras(cameras: Sequence[str]) -> tuple[str, ...]:
    unknown = [c for c in cameras if c not in CAMERAS]
    if unknown or not cameras:
        raise VlaopsError(
            f"unknown camera(s) {', '.join(unknown) or '(none given)'}: "
            f"the ALOHA scene has {', '.join(CAMERAS)}"
        )
    return tuple(dict.fromkeys(cameras))


@dataclass(frozen=True)
class RenderConfig:
    height: int = 480
    width: int = 640
    # False: shadows, reflections and MSAA off (~8× faster on CPU). True: the published look.
    published: bool = False


class Scene:
    """A loaded scene XML with the helpers both the policy env and the expert's mocap env need."""

    def __init__(self, task: Task, xml: str):
        self.task = task
        self.model = mujoco.MjModel.from_xml_path(str(assets_dir() / xml))
        self.data = mujoco.MjData(self.model)
        self._object_adr = [self.model.jnt_qposadr[self.model.joint(j).id] for j in task.objects]
        self._geom_names = [
            mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_GEOM, i)
            for i in range(self.model.ngeom)
        ]

    def place_objects(self, seed: int) -> None:
        poses = np.asarray(self.task.sample(seed), dtype=np.float64).reshape(-1, 7)
        for adr, pose in zip(self._object_adr, poses, strict=True):
            self.data.qpos[adr : adr + 7] = pose

    def object_pose(self, index: int = 0) -> np.ndarray:
        adr = self._object_adr[index]
        return self.data.qpos[adr : adr + 7].copy()

    def contacts(self) -> set[frozenset[str]]:
        names = self._geom_names
        c = self.data.contact
        return {
            frozenset((names[g1], names[g2]))
            for g1, g2 in zip(c.geom1[: self.data.ncon], c.geom2[: self.data.ncon], strict=True)
        }

    def reward(self) -> int:
        return self.task.reward(self.contacts())

    def qpos(self) -> np.ndarray:
        """Arm joints and normalized grippers, ALOHA layout (14)."""
        q = self.data.qpos
        return np.concatenate(
            [q[0:6], [gripper_from_position(q[6])], q[8:14], [gripper_from_position(q[14])]]
        )

    def qvel(self) -> np.ndarray:
        v = self.data.qvel
        scale = 1.0 / (GRIPPER_OPEN - GRIPPER_CLOSED)
        return np.concatenate([v[0:6], [v[6] * scale], v[8:14], [v[14] * scale]])


class AlohaSim:
    """The joint-controlled ALOHA env: ``reset(seed)`` then ``step(action)`` up to 400 times.

    Observations are what a robot client sends: ``{"images": {cam: uint8 HxWx3}, "state":
    float32[14], "prompt": str}``. ``timing`` accumulates seconds spent in physics and rendering.
    """

    def __init__(
        self, task: str, cameras: Sequence[str] = ("top",), render: RenderConfig = RenderConfig()
    ):
        self.task = get_task(task)
        self.cameras = check_cameras(cameras) if cameras else ()
        self.render_config = render
        self.scene = Scene(self.task, self.task.xml)
        self.model, self.data = self.scene.model, self.scene.data
        self._renderer = None
        self.timing = {"physics": 0.0, "render": 0.0}

    def _make_renderer(self) -> mujoco.Renderer:
        cfg = self.render_config
        if not cfg.published:  # must be set before the GL context is made
            self.model.vis.quality.offsamples = 0
            self.model.light_castshadow[:] = 0
            self.model.mat_reflectance[:] = 0
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, cfg.width)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, cfg.height)
        try:
            return mujoco.Renderer(self.model, height=cfg.height, width=cfg.width)
        except Exception as e:
            raise VlaopsError(
                f"cannot open a MuJoCo renderer (MUJOCO_GL={os.environ.get('MUJOCO_GL')}): {e}; "
                "install Mesa EGL (libegl1 libegl-mesa0 libgl1-mesa-dri) or set MUJOCO_GL=osmesa"
            ) from None

    def reset(self, seed: int) -> dict:
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:16] = START_ARM_POSE
        self.data.ctrl[:] = START_ARM_POSE
        self.scene.place_objects(seed)
        mujoco.mj_forward(self.model, self.data)
        return self.observation()

    def step(self, action, observe: bool = True) -> tuple[dict | None, int]:
        """Apply one 14-d action for 20 ms; returns the next observation (None, and nothing
        rendered, when ``observe`` is False) and the reward."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (ACTION_DIM,):
            raise VlaopsError(f"action has shape {a.shape}; the ALOHA sim takes ({ACTION_DIM},)")
        t0 = time.perf_counter()
        left_g, right_g = gripper_to_position(a[6]), gripper_to_position(a[13])
        self.data.ctrl[:] = np.concatenate(
            [a[0:6], [left_g, -left_g], a[7:13], [right_g, -right_g]]
        )
        mujoco.mj_step(self.model, self.data, nstep=SUBSTEPS)
        reward = self.scene.reward()
        self.timing["physics"] += time.perf_counter() - t0
        return (self.observation() if observe else None), reward

    def render(self, camera: str) -> np.ndarray:
        t0 = time.perf_counter()
        if self._renderer is None:
            self._renderer = self._make_renderer()
        self._renderer.update_scene(self.data, camera=camera)
        image = self._renderer.render()
        self.timing["render"] += time.perf_counter() - t0
        return image

    def observation(self) -> dict:
        return {
            "images": {cam: self.render(cam) for cam in self.cameras},
            "state": self.scene.qpos().astype(np.float32),
            "prompt": self.task.prompt,
        }

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
