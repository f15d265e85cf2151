"""Scripted expert: end-effector waypoints in the mocap scene, replayed as joint actions.

How ACT made its sim datasets, made robust on MuJoCo 3.x:

1. In the end-effector variant of the scene, mocap bodies are welded to each gripper. Piecewise-
   linear waypoints (position, quaternion, gripper) move the mocaps; the arms follow through the
   weld. MuJoCo 3.x makes that weld soft (mujoco#1483), so we stiffen it (``WELD_SOLIMP``).
   Waypoints anchored on an object re-read the object's pose every step until the gripper starts
   closing on it (closed-loop re-aiming): a cube nudged during the approach, or held off-centre by
   the right hand, is still grasped where it is. For the insertion, the held peg is steered by
   its measured offset from the hand onto the socket, integrators line it up and keep both the
   peg and the socket level (they pivot in the weak grips), and the last approach is slow.
2. The arm joint angles of that rollout (one step ahead: the pose to reach by the end of each
   step) plus the commanded grippers become joint actions, replayed in the joint-controlled scene
   from the same seed. The replay is the demonstration, and success is judged on it.

    from vlaops.sim import expert
    actions = expert.plan("transfer_cube", seed=3)        # (400, 14) float32 joint actions
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlaops.sim import env

mujoco = env.mujoco

# A stiffer weld than the scene's (.25 .25 .001): the gripper tracks its mocap within millimetres.
WELD_SOLIMP = (0.9, 0.95, 0.001, 0.5, 2.0)


def _quat(axis, degrees) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_axisAngle2Quat(q, np.asarray(axis, float), np.deg2rad(degrees))
    return q


def _mul(a, b) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_mulQuat(q, np.asarray(a, float), np.asarray(b, float))
    return q


def _rot(q) -> np.ndarray:
    r = np.zeros(9)
    mujoco.mju_quat2Mat(r, np.asarray(q, float))
    return r.reshape(3, 3)


IDENTITY = np.array([1.0, 0, 0, 0])


def _at(base, dx, dy, dz) -> np.ndarray:
    return np.asarray(base) + np.array([dx, dy, dz])


# Once a held object is near its goal, its position error is integrated into the mocap target:
# per-step gain, the largest correction (m), and how much of the x (push) error counts. The x
# goal is the touching distance, so the integrator presses the peg on the pin without winding up.
SERVO_GAIN, SERVO_MAX, SERVO_X = 0.2, 0.03, 0.5
# Per-step gain of the integrator that tilts a hand to keep its held object level.
LEVEL_GAIN = 0.05


@dataclass(frozen=True)
class Waypoint:
    t: int  # control step at which the mocap reaches this pose
    # "start" (the mocap at reset), "world", an object ("obj0", "obj1"), or "obj0@obj1": where
    # this mocap must go so that the object it holds (obj0) reaches obj1 + offset
    anchor: str
    offset: tuple[float, float, float]  # added to the anchor's position (m)
    quat: tuple[float, ...] | None  # mocap orientation; None keeps the start orientation
    gripper: float  # 0 closed … 1 open
    # object index: tilt the hand about the world y axis so this held object stays level (an
    # integrator on its pitch runs until aim_until[f"level{i}"], then the tilt stays put)
    level: int | None = None


@dataclass(frozen=True)
class ArmScript:
    waypoints: tuple[Waypoint, ...]
    # anchor → last step it is re-measured (objects: their position; "a@b": the held object's
    # offset from the hand, measured while nothing touches it); after that it stays put
    aim_until: dict[str, int]


# Where the right arm's base stands (x, y): it reaches along the line from there.
RIGHT_BASE = np.array([0.469, 0.5])


def _transfer_cube(objects: np.ndarray) -> tuple[ArmScript, ArmScript]:
    meet = np.array([0.0, 0.5, 0.25])
    pick = tuple(_mul(IDENTITY, _quat([0, 1, 0], -60)))  # right gripper pitched down 60°
    # Off to the side, the arm cannot hold the gripper square to the table edge (its joints'
    # friction beats the weld), and a finger lands on the cube. Yaw it along the reach instead.
    dx, dy = objects[0, :2] - RIGHT_BASE
    grasp = tuple(_mul(_quat([0, 0, 1], np.rad2deg(np.arctan2(-dy, -dx))), pick))
    left_q = tuple(_quat([1, 0, 0], 90))  # left gripper rolled 90°: fingers close vertically

    def w(t, anchor, off, q, g):
        return Waypoint(t, anchor, tuple(off), q, g)

    # The left arm grasps the cube where the right hand actually holds it (anchor obj0). It stops
    # re-aiming at 230, while its fingers are still clear of the cube: re-aiming any later chases
    # a cube that its own fingers push along the right hand's grip.
    left = ArmScript(
        waypoints=(
            w(0, "start", (0, 0, 0), None, 0),
            w(100, "world", _at(meet, -0.12, 0, 0), left_q, 1),
            w(180, "world", _at(meet, -0.12, 0, 0), left_q, 1),
            w(250, "obj0", (0.0, 0, 0), left_q, 1),
            w(265, "obj0", (0.0, 0, 0), left_q, 1),
            w(300, "obj0", (0.0, 0, 0), left_q, 0),
            w(360, "obj0", (-0.1, 0, 0), left_q, 0),
            w(400, "obj0", (-0.1, 0, 0), left_q, 0),
        ),
        aim_until={"obj0": 230},
    )
    right = ArmScript(
        waypoints=(
            w(0, "start", (0, 0, 0), None, 0),
            w(90, "obj0", (0, 0, 0.08), grasp, 1),
            w(130, "obj0", (0, 0, -0.015), grasp, 1),
            w(170, "obj0", (0, 0, -0.015), grasp, 0),
            # lifted over 40 steps: hurried, the wrist swings and the cube slips in the grip
            w(210, "world", _at(meet, 0.05, 0, 0), grasp, 0),
            w(220, "world", meet, grasp, 0),
            w(300, "world", meet, grasp, 0),
            w(320, "world", meet, grasp, 1),
            w(360, "world", _at(meet, 0.1, 0, 0), grasp, 1),
            w(400, "world", _at(meet, 0.1, 0, 0), grasp, 1),
        ),
        aim_until={"obj0": 130},
    )
    return left, right


# The mocap point sits ~4 cm beyond the finger pads along the gripper; pitched 60° down, the pads
# close ~2 cm behind it in x. Shifting the point grasps the peg and socket at their centres, so
# they do not swing in the (weak) grip.
GRASP_X = 0.02
GRASP_Z = -0.01
# Peg centre − socket centre along x: lined up 2 cm outside the socket's mouth, 5 mm before the
# pin (the last approach is slow, so the peg does not bounce off it), and on the pin. Pressing
# further only slides the peg in the weak grip, or the socket out of the other hand.
STANDOFF, NEAR, INSERTED = 0.14, 0.105, 0.100


def _insertion(objects: np.ndarray) -> tuple[ArmScript, ArmScript]:
    meet = np.array([0.0, 0.5, 0.15])
    lift = 0.00715
    pick_l = tuple(_quat([0, 1, 0], 60))
    pick_r = tuple(_quat([0, 1, 0], -60))

    def w(t, anchor, off, q, g, level=None):
        return Waypoint(t, anchor, tuple(off), q, g, level)

    left = ArmScript(  # picks the socket (obj1) and holds it still, level, at the meeting point
        waypoints=(
            w(0, "start", (0, 0, 0), None, 0),
            w(120, "obj1", (GRASP_X, 0, 0.08), pick_l, 1),
            w(170, "obj1", (GRASP_X, 0, GRASP_Z), pick_l, 1),
            w(220, "obj1", (GRASP_X, 0, GRASP_Z), pick_l, 0),
            w(275, "world", _at(meet, -0.1, 0, 0), pick_l, 0, level=1),
            w(400, "world", _at(meet, -0.1, 0, 0), pick_l, 0, level=1),
        ),
        aim_until={"obj1": 170, "level1": 400},
    )
    right = ArmScript(  # picks the peg (obj0), lines it up level with the socket, pushes it in
        waypoints=(
            w(0, "start", (0, 0, 0), None, 0),
            w(120, "obj0", (-GRASP_X, 0, 0.08), pick_r, 1),
            w(170, "obj0", (-GRASP_X, 0, GRASP_Z), pick_r, 1),
            w(220, "obj0", (-GRASP_X, 0, GRASP_Z), pick_r, 0),
            w(265, "world", _at(meet, 0.12, 0, lift), pick_r, 0, level=0),
            w(290, "obj0@obj1", (STANDOFF, 0, 0), pick_r, 0, level=0),
            w(310, "obj0@obj1", (STANDOFF, 0, 0), pick_r, 0, level=0),
            w(330, "obj0@obj1", (NEAR, 0, 0), pick_r, 0, level=0),
            w(360, "obj0@obj1", (INSERTED, 0, 0), pick_r, 0, level=0),
            w(400, "obj0@obj1", (INSERTED, 0, 0), pick_r, 0, level=0),
        ),
        aim_until={"obj0": 170, "obj0@obj1": 305, "level0": 400},
    )
    return left, right


SCRIPTS = {"transfer_cube": _transfer_cube, "insertion": _insertion}


class _Arm:
    """One arm's script being played: resolves anchors against the live scene."""

    def __init__(self, script: ArmScript, side: str, start_pos, start_quat, weld_relpos):
        self.script = script
        self.hand = f"vx300s_{side}/gripper_link"
        self.weld_relpos = np.array(weld_relpos)  # the hand's origin in the mocap's frame
        self.start_pos, self.start_quat = np.array(start_pos), np.array(start_quat)
        self.frozen: dict[str, np.ndarray] = {}
        self.servo, self._servo_t = np.zeros(3), -1
        self.tilt, self._tilt_t = 0.0, -1  # hand tilt about world y (rad) that levels its object

    def _quat(self, wp: Waypoint, scene: env.Scene, t: int) -> np.ndarray:
        q = self.start_quat if wp.quat is None else np.asarray(wp.quat)
        if wp.level is None:
            return q
        # The held objects pivot about the finger axis (world y) when the hand accelerates; an
        # integrator tilts the hand until the object is level again, then holds that tilt.
        if t <= self.script.aim_until[f"level{wp.level}"] and self._tilt_t != t:
            self._tilt_t = t
            w, _, y, _ = scene.object_pose(wp.level)[3:]
            self.tilt += LEVEL_GAIN * 2 * np.arctan2(y, w)
        return _mul(_quat([0, 1, 0], -np.rad2deg(self.tilt)), q)

    def _live(self, anchor: str, t: int) -> bool:
        return t <= self.script.aim_until[anchor] or anchor not in self.frozen

    def _position(self, wp: Waypoint, scene: env.Scene, t: int, quat: np.ndarray) -> np.ndarray:
        if wp.anchor == "start":
            base = self.start_pos
        elif wp.anchor == "world":
            base = np.zeros(3)
        elif "@" in wp.anchor:
            held, goal = (int(a[3:]) for a in wp.anchor.split("@"))
            held_pos, goal_pos = scene.object_pose(held)[:3], scene.object_pose(goal)[:3]
            if self._live(wp.anchor, t):  # where the object sits relative to the (world's) hand
                self.frozen[wp.anchor] = held_pos - scene.data.body(self.hand).xpos
            elif self._servo_t != t:  # then a slow integrator lines the objects up in y and z
                self._servo_t = t
                err = goal_pos + np.asarray(wp.offset) - held_pos
                err[0] *= SERVO_X
                self.servo = np.clip(self.servo + SERVO_GAIN * err, -SERVO_MAX, SERVO_MAX)
            # the hand pose that puts the object there, then the mocap pose that puts the hand there
            hand = goal_pos - self.frozen[wp.anchor] + self.servo
            base = hand - _rot(quat) @ self.weld_relpos
        else:
            if self._live(wp.anchor, t):
                self.frozen[wp.anchor] = scene.object_pose(int(wp.anchor[3:]))[:3]
            base = self.frozen[wp.anchor]
        return base + np.asarray(wp.offset)

    def target(self, scene: env.Scene, t: int) -> tuple[np.ndarray, np.ndarray, float]:
        wps = self.script.waypoints
        nxt = next((i for i, wp in enumerate(wps) if wp.t > t), len(wps) - 1)
        a, b = wps[max(nxt - 1, 0)], wps[nxt]
        frac = 1.0 if b.t == a.t else np.clip((t - a.t) / (b.t - a.t), 0.0, 1.0)
        qa, qb = self._quat(a, scene, t), self._quat(b, scene, t)
        pa, pb = self._position(a, scene, t, qa), self._position(b, scene, t, qb)
        quat = (1 - frac) * qa + frac * qb
        return (
            (1 - frac) * pa + frac * pb,
            quat / np.linalg.norm(quat),
            ((1 - frac) * a.gripper + frac * b.gripper),
        )


def _weld_consistent_mocap(scene: env.Scene) -> list[tuple[np.ndarray, np.ndarray]]:
    """Mocap poses that the welds already satisfy at the start pose (so nothing jumps at t=0)."""
    m, d = scene.model, scene.data
    out = []
    for i in range(2):
        relpos, relquat = m.eq_data[i, 3:6], m.eq_data[i, 6:10]
        body = m.eq_obj2id[i]
        inv = np.zeros(4)
        mujoco.mju_negQuat(inv, relquat)
        quat = _mul(d.xquat[body], inv)
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, quat)
        out.append((d.xpos[body] - rot.reshape(3, 3) @ relpos, quat))
    return out


@dataclass(frozen=True)
class Demo:
    actions: np.ndarray  # (400, 14) float32 joint actions
    rewards: np.ndarray  # (400,) int reward after each action, in the joint-controlled scene

    @property
    def success(self) -> bool:
        return bool(self.rewards[-1] == env.MAX_REWARD)


def plan(task: str, seed: int, trace: list | None = None) -> Demo:
    """The expert's episode of ``task`` with ``seed``: joint actions and the rewards they earn.

    The mocap scene and the joint-controlled scene run in lockstep: object anchors are read from
    the joint-controlled scene (the world the demonstration happens in), the mocap scene turns the
    end-effector targets into joint angles, and those drive the joint-controlled scene. Replaying
    ``actions`` in a fresh ``AlohaSim`` reset with ``seed`` reproduces the episode exactly.
    ``trace``, when given, receives one dict per step: what to look at when a script change makes
    episodes fail.
    """
    spec = env.get_task(task)
    objects = np.asarray(spec.sample(seed), np.float64).reshape(-1, 7)  # initial poses
    left_script, right_script = SCRIPTS[spec.name](objects)
    world = env.AlohaSim(spec.name, cameras=())
    world.reset(seed)
    scene = env.Scene(spec, spec.ee_xml)
    m, d = scene.model, scene.data
    m.eq_solimp[:] = WELD_SOLIMP
    d.qpos[:16] = env.START_ARM_POSE
    scene.place_objects(seed)
    mujoco.mj_forward(m, d)
    (lp, lq), (rp, rq) = _weld_consistent_mocap(scene)
    mocap_left, mocap_right = (m.body_mocapid[m.eq_obj1id[i]] for i in range(2))
    arms = [
        (_Arm(left_script, "left", lp, lq, m.eq_data[0, 3:6]), mocap_left),
        (_Arm(right_script, "right", rp, rq, m.eq_data[1, 3:6]), mocap_right),
    ]
    for arm, mocap in arms:
        d.mocap_pos[mocap], d.mocap_quat[mocap] = arm.start_pos, arm.start_quat
    d.ctrl[:] = [env.GRIPPER_CLOSED, -env.GRIPPER_CLOSED] * 2

    actions = np.zeros((env.EPISODE_STEPS, env.ACTION_DIM), np.float32)
    rewards = np.zeros(env.EPISODE_STEPS, np.int64)
    for t in range(env.EPISODE_STEPS):
        grippers = []
        for arm, mocap in arms:
            pos, quat, g = arm.target(world.scene, t)
            d.mocap_pos[mocap], d.mocap_quat[mocap] = pos, quat
            grippers.append(g)
        gl, gr = env.gripper_to_position(grippers[0]), env.gripper_to_position(grippers[1])
        d.ctrl[:] = [gl, -gl, gr, -gr]
        mujoco.mj_step(m, d, nstep=env.SUBSTEPS)
        q = scene.qpos()
        q[6], q[13] = grippers
        actions[t] = q
        _, rewards[t] = world.step(actions[t], observe=False)
        if trace is not None:
            trace.append(_trace_row(world.scene, t, rewards[t], [d.mocap_pos[i] for _, i in arms]))
    return Demo(actions, rewards)


def _trace_row(scene: env.Scene, t: int, reward: int, mocap: list) -> dict:
    d = scene.data
    return {
        "t": t,
        "reward": int(reward),
        "objects": [scene.object_pose(i)[:3].round(3) for i in range(len(scene.task.objects))],
        "mocap": [p.round(3) for p in mocap],
        "gripper_link": [
            d.body(f"vx300s_{side}/gripper_link").xpos.round(3) for side in ("left", "right")
        ],
        "fingers": d.qpos[[6, 7, 14, 15]].round(4),  # finger slide joints (m), left then right
        "object_quats": [scene.object_pose(i)[3:].round(3) for i in range(len(scene.task.objects))],
    }
