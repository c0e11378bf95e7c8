"""RobosuiteWorld: the simulated scene behind the World protocol (robosuite + MuJoCo, no ROS).

One robosuite environment is built once and kept: episodes reset without reloading the model
(robosuite's ``hard_reset=False``), and perturbations edit the loaded model in place
(:mod:`robomd_sim_bridge.perturb`), so a campaign pays the model build once.

Observations follow :mod:`robomd_diagnoser.policy` (``image`` upright, ``eef_pos`` in the robot
base frame, ``gripper`` opening in [0, 1]) and add *privileged* simulator state that scripted
experts use and policies under test must not (:data:`PRIVILEGED_KEYS`):

``object_pos``   (3,) the task's object (cube, cube A, can, nut) in the robot base frame
``object_quat``  (4,) its orientation in the base frame, (w, x, y, z)
``goal_pos``     (3,) where it must go, base frame (stack, pick_place_can, nut_assembly_square)

and one object-state key that low-dimensional learned policies may use, as robosuite's
``object-state`` observation does (a real robot provides it through a pose estimator):

``object``       (10,) ``object_pos`` (3), ``object_quat`` (4), ``object_pos - eef_pos`` (3)

The camera is rendered only when the policy needs images (a policy attribute ``uses_image``,
default True) or frames are being recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from robomd_diagnoser.catalog import Catalog, CatalogError
from robomd_diagnoser.policy import Observation, RolloutPolicy, as_action
from robomd_diagnoser.world import (
    Outcome,
    PerturbationUnavailable,
    RolloutResult,
    RolloutStatus,
    StepCallback,
)
from robomd_sim_bridge.factors import (
    FactorEditor,
    check_catalog,
    needs_distractors,
    with_distractors,
)
from robomd_sim_bridge.perturb import SceneEditor
from robomd_sim_bridge.tasks import task_spec

PRIVILEGED_KEYS = ("object_pos", "object_quat", "goal_pos")
#: Placement retries when resized objects would start interpenetrating.
MAX_PLACEMENT_TRIES = 50
#: Penetration (m) between two free objects that counts as an invalid placement.
_OVERLAP = 1e-3
#: Which end of the first gripper joint's range is "open", for robosuite's grippers.
_GRIPPER_OPEN_END = {"Robotiq85Gripper": 0, "PandaGripper": 1}
#: robosuite warns at import about optional extras no campaign uses: robosuite_models' extra
#: robots and the mink whole-body IK of its GR1 humanoid (robosuite/__init__.py), and the
#: private macro file (robosuite/macros.py; its defaults are what the worlds expect); and it
#: logs the controller file it loads each time a world is built.
_OPTIONAL_EXTRAS = ("Could not import robosuite_models",
                    "Could not load the mink-based whole-body IK", "No private macro file found",
                    "It is recommended to use a private macro file", "To setup, run: python",
                    "Loading controller configuration from")


def _not_about_optional_extras(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_OPTIONAL_EXTRAS)


logging.getLogger("robosuite_logs").addFilter(_not_about_optional_extras)


@dataclass(frozen=True)
class ObjectState:
    """Privileged state of a task target, world frame.

    :param world_pos: body origin (m).
    :param world_rot: body orientation (3x3).
    :param center: centre of the box bounding its collision geoms (body frame).
    :param half_size: half-sizes of that box (body frame).
    :param nominal_half_size: the half-sizes before any perturbation.
    """

    world_pos: np.ndarray
    world_rot: np.ndarray
    center: np.ndarray
    half_size: np.ndarray
    nominal_half_size: np.ndarray

    @property
    def top_z(self) -> float:
        """Height of the bounding box's highest point, world frame."""
        return float(self.world_pos[2] + self.world_rot[2] @ self.center
                     + np.abs(self.world_rot[2]) @ self.half_size)

    @property
    def bottom_z(self) -> float:
        """Height of the bounding box's lowest point, world frame."""
        return float(self.world_pos[2] + self.world_rot[2] @ self.center
                     - np.abs(self.world_rot[2]) @ self.half_size)


@dataclass(frozen=True)
class _Rollout:
    status: RolloutStatus
    steps: int
    success_step: int | None
    reason: str


def load_llvm_users_before_gl() -> None:
    """Import Triton (installed with torch) before any OpenGL context exists.

    On a machine without a GPU, EGL is Mesa's software renderer, which loads its own LLVM; Triton
    ships another. Importing Triton after a context was made crashes the process (a segfault in
    ``import triton``, reached through transformers -> torch._dynamo when a text encoder loads
    after scene images were rendered). Loaded first, both work. Costs about 0.15 s, once.
    """
    import importlib.util

    if importlib.util.find_spec("triton") is not None:
        importlib.import_module("triton")


class RobosuiteWorld:
    """A robosuite task behind the :class:`robomd_diagnoser.world.World` protocol.

    :param catalog: perturbation catalog; its ``task`` picks the scene (see
        :data:`robomd_sim_bridge.tasks.TASKS`).
    :param policy: the policy under test (settable later as ``world.policy``).
    :param robot: robosuite robot, ``UR5e`` or ``Panda``.
    :param camera: scene camera name.
    :param camera_size: square image size (pixels) of ``observe()`` and policy images.
    :param shadows: render shadows (slower; off by default).
    :param multisample: render with 4x multisampling (slower; off by default).
    :param horizon: default step limit for callers of :meth:`execute`.
    :param control_freq: policy steps per simulated second.
    :param record: keep the frames of each rollout in :attr:`last_frames`.
    :param video_size: square size of recorded frames (default: ``camera_size``).
    :raises CatalogError: if the task has no simulated scene or an entry cannot be applied.
    """

    def __init__(self, catalog: Catalog, policy: RolloutPolicy | None = None, *,
                 robot: str = "UR5e", camera: str = "agentview", camera_size: int = 84,
                 shadows: bool = False, multisample: bool = False, horizon: int = 150,
                 control_freq: int = 20, record: bool = False,
                 video_size: int | None = None) -> None:
        self.spec = task_spec(catalog.task)
        check_catalog(self.spec, catalog)
        load_llvm_users_before_gl()
        import robosuite

        self.catalog = catalog
        self.policy = policy
        self.robot = robot
        self.camera = camera
        self.camera_size = camera_size
        self.horizon = horizon
        self.control_freq = control_freq
        self.record = record
        self.video_size = video_size or camera_size
        self.last_frames: list[np.ndarray] = []
        self.env = robosuite.make(
            self.spec.env_name, robots=robot, has_renderer=False, has_offscreen_renderer=False,
            use_camera_obs=False, hard_reset=False, ignore_done=True, control_freq=control_freq,
            seed=0, **self.spec.env_kwargs)  # seed: the model build (e.g. Lift's cube size)
        self.shadows, self.multisample = shadows, multisample
        self._renderers: dict[int, mujoco.Renderer] = {}
        self._scene_option = mujoco.MjvOption()
        self._scene_option.geomgroup[:] = 0
        self._scene_option.geomgroup[1] = 1  # visual geoms only, as robosuite renders
        self._scene_option.sitegroup[:] = 0
        self._bind()
        if distractors := needs_distractors(catalog):  # part of the model from the start
            self.env.reset_from_xml_string(with_distractors(self.env.sim.model.get_xml(),
                                                            distractors))
            self._bind()
        cameras = [self.model.camera(i).name for i in range(self.model.ncam)]
        if camera not in cameras:
            raise ValueError(f"camera {camera!r} is not in the {self.spec.env_name} scene; "
                             f"cameras: {', '.join(cameras)}")
        self.editor = SceneEditor(self.model, self.spec)
        #: The scene's MJCF as loaded (nominal), for tools that rebuild the model from XML.
        self.nominal_xml: str = self.env.sim.model.get_xml()
        robot0 = self.env.robots[0]
        self.base_body = self.model.body(robot0.robot_model.root_body).id
        self.eef_site = robot0.eef_site_id["right"]
        gripper = robot0.gripper["right"]
        joint = self.model.joint(gripper.joints[0])
        self._gripper_qpos = joint.qposadr[0]
        lo, hi = joint.range
        open_end = _GRIPPER_OPEN_END.get(type(gripper).__name__)
        if open_end is None:  # other grippers: the range end nearest the initial (open) pose
            open_end = int(abs(hi - gripper.init_qpos[0]) < abs(lo - gripper.init_qpos[0]))
        self._gripper_open, self._gripper_closed = (lo, hi) if open_end == 0 else (hi, lo)
        self._free_qpos = {name: self.model.jnt_qposadr[self.model.body_jntadr[
            self.editor.body_id(name)]] for name in self.spec.objects}
        self._applied: tuple[str, ...] = ()
        self._seed = 0
        self._last: _Rollout | None = None
        self.factors = FactorEditor(self)
        self._reset_episode(0)

    # ------------------------------------------------------------------ World protocol

    def reset(self, seed: int) -> None:
        """Remove all perturbations and reset the episode with ``seed``.

        :param seed: seeds object placement and the robot's initial joint noise.
        """
        self.factors.restore()
        self._applied = ()
        self._reset_episode(seed)

    def apply(self, perturbations: Sequence[str]) -> None:
        """Set the scene's perturbations to exactly this cumulative list (in order).

        The episode is then reset with the current seed, so :meth:`observe` shows the scene a
        rollout with that seed starts from.

        :param perturbations: catalog names; later entries override earlier ones on the same
            target.
        :raises CatalogError: for a name not in the catalog (nothing is changed then).
        :raises PerturbationUnavailable: if resized objects cannot be placed without overlap.
        """
        perts = [self.catalog[name] for name in perturbations]
        self.factors.restore()
        for p in perts:
            self.factors.apply(p)
        self._applied = tuple(perturbations)
        self._reset_episode(self._seed)

    def observe(self) -> np.ndarray:
        """The scene camera image, ``camera_size`` square, HxWx3 uint8, upright."""
        return self.render(self.camera_size)

    def execute(self, max_steps: int, seed: int, on_step: StepCallback | None = None,
                should_stop: Callable[[], bool] | None = None) -> RolloutResult:
        """Reset the episode with ``seed`` under the current perturbations and run the policy.

        Runs until the task's success check holds or ``max_steps`` control steps. Frames are kept
        in :attr:`last_frames` when :attr:`record` is set.

        :param max_steps: control step limit.
        :param seed: episode seed (object placement, initial joint noise).
        :param on_step: called after each step with (step, elapsed seconds).
        :param should_stop: polled before each step; True ends the rollout as CANCELLED.
        :raises RuntimeError: if no policy is set.
        """
        if self.policy is None:
            raise RuntimeError("RobosuiteWorld.execute needs a policy: set world.policy first")
        self._reset_episode(seed)
        uses_image = bool(getattr(self.policy, "uses_image", True))
        self.policy.reset()
        self.last_frames = []
        start = time.monotonic()
        steps, success_step = 0, None
        status, reason = RolloutStatus.COMPLETED, f"step limit {max_steps} reached"
        while steps < max_steps:
            if should_stop is not None and should_stop():
                status, reason = RolloutStatus.CANCELLED, f"stop requested after {steps} steps"
                break
            obs = self.observation(image=uses_image)
            if self.record:
                self.last_frames.append(self._frame(obs))
            action = as_action(self.policy.act(obs), f"policy {type(self.policy).__name__}")
            self.env.step(self.factors.digital.perturb_action(action))
            steps += 1
            if not np.all(np.isfinite(self.data.qpos)):
                status, reason = RolloutStatus.ABORTED, f"simulation diverged at step {steps}"
                break
            if on_step is not None:
                on_step(steps, time.monotonic() - start)
            if self.spec.success(self):
                success_step, reason = steps, f"success at step {steps}"
                break
        if self.record:
            self.last_frames.append(self._frame(self.observation(image=False)))
        self._last = _Rollout(status, steps, success_step, reason)
        return RolloutResult(status, steps, time.monotonic() - start, reason)

    def judge(self) -> Outcome:
        """Judge the last rollout with the task's success check (true if met at any step).

        :raises RuntimeError: before any rollout, or if the last one did not complete.
        """
        last = self._last
        if last is None:
            raise RuntimeError("judge() called before any execute()")
        if last.status is not RolloutStatus.COMPLETED:
            raise RuntimeError(f"the last rollout ended {last.status.value} ({last.reason}); only "
                               "completed rollouts are judged")
        check = f"{self.spec.env_name} success check ({self.spec.goal_text})"
        if last.success_step is not None:
            return Outcome(True, 1.0, f"{check} met at step {last.success_step}")
        return Outcome(False, 1.0, f"{check} not met in {last.steps} steps")

    def close(self) -> None:
        """Release the renderers and the simulation."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        self.env.close()

    # ------------------------------------------------------------------ extras

    @property
    def perturbations(self) -> tuple[str, ...]:
        """The perturbations currently applied, in order."""
        return self._applied

    def observation(self, image: bool = True) -> Observation:
        """The current observation (see the module docstring for the keys).

        :param image: include the camera image (rendering costs most of a step).
        """
        obj = self.object_state(self.spec.primary)
        base_rot = self.data.xmat[self.base_body].reshape(3, 3)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, (base_rot.T @ obj.world_rot).reshape(-1))
        obs: Observation = {
            "eef_pos": self.to_base(self.data.site_xpos[self.eef_site]),
            "gripper": np.array([self.gripper_opening()]),
            "object_pos": self.to_base(obj.world_pos),
            "object_quat": quat,
        }
        obs["object"] = np.concatenate([obs["object_pos"], quat,
                                        obs["object_pos"] - obs["eef_pos"]])
        if self.spec.goal is not None:
            obs["goal_pos"] = self.to_base(self.spec.goal(self))
        if image:
            obs["image"] = self.render(self.camera_size)
        return obs

    def render(self, size: int, camera: str | None = None) -> np.ndarray:
        """Render a camera, upright, HxWx3 uint8.

        :param size: square image size in pixels.
        :param camera: camera name (default: the scene camera).
        """
        renderer = self._renderers.get(size)
        if renderer is None:
            renderer = self._renderers[size] = mujoco.Renderer(self.model, size, size)
        renderer.update_scene(self.data, camera=camera or self.camera,
                              scene_option=self._scene_option)
        image = renderer.render()
        return self.factors.digital.corrupt(image) if camera in (None, self.camera) else image

    def object_state(self, target: str) -> ObjectState:
        """Privileged state of a task target (``cube``, ``peg``...), world frame.

        :raises CatalogError: for a name that is not a target of this task.
        """
        if target not in self.spec.targets:
            raise CatalogError(f"{target!r} is not a target of task {self.spec.name}; targets: "
                               f"{', '.join(self.spec.targets)}")
        body = self.editor.body_id(target)
        center, half = self.editor.bounds(target)
        return ObjectState(self.data.xpos[body].copy(), self.data.xmat[body].reshape(3, 3).copy(),
                           center, half, self.editor.bounds(target, nominal=True)[1])

    @property
    def table_top_z(self) -> float:
        """Height of the table's top surface, world frame.

        :raises RuntimeError: for a task without a table (pick_place_can uses bins).
        """
        if self.editor.table_top_z is None:
            raise RuntimeError(f"task {self.spec.name} has no table")
        return self.editor.table_top_z

    def to_base(self, world_pos: np.ndarray) -> np.ndarray:
        """Express a world-frame point in the robot base frame."""
        rot = self.data.xmat[self.base_body].reshape(3, 3)
        return rot.T @ (np.asarray(world_pos, dtype=float) - self.data.xpos[self.base_body])

    def gripper_opening(self) -> float:
        """Gripper opening in [0, 1], 1 = fully open."""
        q = self.data.qpos[self._gripper_qpos]
        frac = (q - self._gripper_closed) / (self._gripper_open - self._gripper_closed)
        return float(np.clip(frac, 0.0, 1.0))

    def model_digest(self) -> str:
        """Hash of the model arrays perturbations can touch and of the episode-level and digital
        edits (equal to nominal after reset)."""
        return f"{self.editor.digest()}:{self.factors.state_digest()}"

    def load_xml(self, xml: str, perturbations: Sequence[str] = ()) -> None:
        """Rebuild the simulator from MJCF text of this scene (robosuite's
        ``reset_from_xml_string``), then reset the episode with the current seed.

        This is the slow path that rewriting XML per perturbation takes (see
        :mod:`robomd_sim_bridge.xml_rewrite`); :meth:`apply` edits in place instead. Ids must be
        unchanged (same scene, edited attributes). ``load_xml(world.nominal_xml)`` returns to
        the nominal scene exactly; :meth:`reset` after a rebuild from perturbed XML restores the
        perturbable arrays but not what the compiler derived from them (e.g. inertial frames).

        :param xml: the MJCF text.
        :param perturbations: what ``xml`` applies, reported by :attr:`perturbations`.
        """
        self.env.reset_from_xml_string(xml)
        self._bind()
        self.editor.rebind(self.model)
        self._applied = tuple(perturbations)
        self._reset_episode(self._seed)

    # ------------------------------------------------------------------ internals

    def _bind(self) -> None:
        """Take the (possibly rebuilt) simulator's model and data; set rendering quality."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        self.model = self.env.sim.model._model
        self.data = self.env.sim.data._data
        vis = self.model.vis
        vis.quality.shadowsize = 4096 if self.shadows else 0
        vis.quality.offsamples = 4 if self.multisample else 0
        vis.global_.offwidth = max(vis.global_.offwidth, self.video_size, self.camera_size)
        vis.global_.offheight = max(vis.global_.offheight, self.video_size, self.camera_size)

    def _frame(self, obs: Observation) -> np.ndarray:
        if "image" in obs and self.video_size == self.camera_size:
            return obs["image"]
        return self.render(self.video_size)

    def _reset_episode(self, seed: int) -> None:
        """robosuite reset with ``seed``, then rest resized objects on their support."""
        self.env.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
        for _ in range(MAX_PLACEMENT_TRIES):
            self.env.reset()
            for name, adr in self._free_qpos.items():
                grow = self.editor.bounds(name)[1] - self.editor.bounds(name, nominal=True)[1]
                self.data.qpos[adr + 2] += grow[2]
            mujoco.mj_forward(self.model, self.data)
            self.factors.on_reset(seed)
            if not self._objects_overlap():
                break
        else:
            raise PerturbationUnavailable(
                f"could not place the objects of {self.spec.name} without overlap in "
                f"{MAX_PLACEMENT_TRIES} tries under perturbations {list(self._applied)}; "
                "use smaller objects")
        self._seed = seed

    def _objects_overlap(self) -> bool:
        if len(self._free_qpos) < 2:
            return False
        owner = {}
        for name in self._free_qpos:
            for g in self.editor.collision_geoms(name):
                owner[int(g)] = name
        for c in self.data.contact[: self.data.ncon]:
            a, b = owner.get(int(c.geom1)), owner.get(int(c.geom2))
            if a is not None and b is not None and a != b and c.dist < -_OVERLAP:
                return True
        return False

    def __repr__(self) -> str:
        return (f"RobosuiteWorld(task={self.spec.name}, robot={self.robot}, "
                f"perturbations={list(self._applied)})")

