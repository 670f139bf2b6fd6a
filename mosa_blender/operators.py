"""Operators: thin shells that gather from bpy, call plain code, and write the result back.

Generate and Regenerate Range share one job loop (`JobRun`): the modal path advances it on a
timer, the synchronous path (tests, the headless demo) loops the same step until it finishes.
The Blender-side work on the job's result (retargeting, the constraint solve, keying) runs the
same way, in slices (`Writing`), so Esc and Cancel work until the last key is written, and a
cancelled job leaves the scene as it was.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, IntProperty

from . import baking, engine_session, model_ops, preferences, shots, spans, takes
from .armature_io import pose_warnings, scaled
from .engine_client import FINISHED, EngineClient, EngineError, EngineUnavailable
from .mapping_ops import read_mapping
from .retargeting import action_to_motion, armature_mapping, motion_to_tracks_steps
from .spans import rotations
from .tracks import action_name
from .vendored import packed

LOG = logging.getLogger(__name__)
POLL_S = 0.03  # a look at the job (a 2 ms GET on loopback); a result waits half of this on average
SLICE_S = 0.08  # the most Blender-side work done between two looks at the UI events


def progress_fraction(progress: dict | None) -> float:
    """The engine reports progress as {step, total} (scales of the pyramid); the status bar wants 0..1."""
    if not progress or not progress.get("total"):
        return 0.0
    return min(1.0, progress["step"] / progress["total"])


@dataclass
class JobRun:
    """One engine job followed to its end: `step()` polls once and says whether it is over."""

    client: EngineClient
    job_id: str
    model: str = ""  # the model's name once the job is done, stored with the actions it makes
    state: str = "queued"
    progress: float = 0.0
    result: list[dict] = field(default_factory=list)
    error: str = ""

    def step(self) -> bool:
        try:
            job = self.client.job(self.job_id)
            state, progress = job["state"], progress_fraction(job.get("progress"))
            if state == "done":
                self.model = self.client.health().get("model") or ""  # loaded by now, so health names it
                self.result = job["result"]
        except EngineError as failure:  # the engine refused (an expired job), or it is not an engine
            self.state, self.error = "failed", str(failure)
            return True
        except EngineUnavailable as failure:
            self.state, self.error = "failed", f"the engine stopped answering: {failure}"
            return True
        except Exception as failure:  # a job must end: a stuck one greys out every MoSa button
            LOG.exception("job %s: an answer the add-on does not understand", self.job_id)
            self.state, self.error = (
                "failed",
                f"the engine's answer was not understood ({type(failure).__name__}: {failure})",
            )
            return True
        self.state, self.progress = state, progress
        if self.state == "failed":
            self.error = job.get("error") or "the job failed without a message"
        return self.state in FINISHED

    def cancel(self) -> None:
        try:
            if self.client is not None:  # None: a result already at hand (Bake), no engine job
                self.client.cancel(self.job_id)
        except (EngineUnavailable, EngineError):
            pass  # a dead engine has nothing left to cancel
        self.state = "cancelled"


@dataclass(frozen=True)
class Placing:
    """How a motion sits on the rig (retargeting.motion_to_tracks_steps): in the rig's own space
    (read back off it), or placed by its frame `placed_from` as Generate placed its first frame
    (a generated motion: 0; extended before: where the generated part begins)."""

    on_rig: bool = False
    placed_from: int = 0

    def with_frames_before(self, frames: int) -> Placing:
        """The same placing once `frames` are added before the motion."""
        return Placing(self.on_rig, self.placed_from + frames)


_active_run: JobRun | None = None  # the job the Cancel button stops


class Writing:
    """Blender-side work in slices: `steps` is a generator that yields its progress (0..1)
    between slices; `step()` runs one slice and says whether the work is over (done or failed:
    `error`); `cancel()` stops it. Whatever the work made (new actions, the rig's active action)
    is taken back when it is cancelled or fails."""

    def __init__(self, obj: bpy.types.Object, steps) -> None:
        self.obj = obj
        self.steps, self.progress, self.error = _kept_unless_finished(obj, steps), 0.0, ""

    def step(self) -> bool:
        try:
            self.progress = next(self.steps)
        except StopIteration:
            self.progress = 1.0
            return True
        except (ValueError, RuntimeError) as failure:
            self.error = str(failure)
            return True
        except Exception as failure:  # a bug, not bad input: the job still ends and says so
            LOG.exception("MoSa: the Blender-side work on the result failed")
            self.error = f"unexpected error ({type(failure).__name__}: {failure}); the traceback is in the console"
            return True
        return False

    def run(self, budget_s: float) -> bool:
        """Slices until `budget_s` is used up or the work is over (whether it is)."""
        started = time.perf_counter()
        while time.perf_counter() - started < budget_s:
            if self.step():
                return True
        return False

    def cancel(self) -> None:
        self.steps.close()


def _kept_unless_finished(obj: bpy.types.Object, steps):
    """`steps`, with the scene put back as it was (no new action, the same active action and
    slot) if they are closed halfway or fail."""
    animation = obj.animation_data
    active = (animation.action, getattr(animation, "action_slot", None)) if animation else None
    existing = set(bpy.data.actions.keys())
    try:
        return (yield from steps)
    except BaseException:
        # The new actions go first: whatever else fails, none is left behind without users.
        for name in set(bpy.data.actions.keys()) - existing:
            bpy.data.actions.remove(bpy.data.actions[name])
        if active is None:
            obj.animation_data_clear()
        else:
            obj.animation_data.action = active[0]
            if active[1] is not None:
                obj.animation_data.action_slot = active[1]
        raise


def forget_active_run() -> None:
    """Cancel the running job, if any (a new file is loading: its result has nowhere to go)."""
    global _active_run
    if _active_run is not None:
        _active_run.cancel()
    _active_run = None


def _armature_poll(cls, context) -> bool:
    obj = context.active_object
    if obj is None or obj.type != "ARMATURE":
        cls.poll_message_set("Select an armature: MoSa animates the active armature")
        return False
    if _active_run is not None:
        cls.poll_message_set("A MoSa job is running; wait for it or cancel it")
        return False
    if obj.library is not None:
        cls.poll_message_set(
            "The armature is linked from a library: make a library override first (Object > Library Override)"
        )
        return False
    if obj.animation_data is not None and obj.animation_data.use_tweak_mode:
        cls.poll_message_set("The armature is in NLA tweak mode: leave it first (Tab in the NLA editor)")
        return False
    return True


def connect(operator, context) -> EngineClient | None:
    try:
        checkpoint = model_ops.chosen_checkpoint(context) if preferences.get(context).engine_mode == "LOCAL" else None
        client, news = engine_session.connect(preferences.get(context), preferences.user_dir(), checkpoint)
    except Exception as failure:  # the engine could not start: say why, in the UI
        operator.report({"ERROR"}, f"MoSa engine unavailable: {failure}")
        return None
    if news:
        operator.report({"WARNING"} if "restarted" in news else {"INFO"}, f"MoSa: {news}")
    return client


def _record_job(session, run: JobRun, kind: str, prompt: str) -> None:
    entry = session.jobs.add()
    entry.job_id, entry.kind, entry.prompt, entry.state = run.job_id, kind, prompt, run.state
    while len(session.jobs) > 5:
        session.jobs.remove(0)


class _JobOperator:
    """The shared modal/synchronous driver; subclasses say how to submit and what to do with the result."""

    synchronous: BoolProperty(
        name="Synchronous",
        description="Wait for the result, blocking (scripts, tests)",
        default=False,
        options={"SKIP_SAVE"},
    )
    _modal = False  # set once the timer-driven path starts: only then is there a status bar to update
    _placing = Placing()  # how the motion sent sits on the rig (active_motion), for the Blender side
    _writing: Writing | None = None  # the Blender-side work on the result, once the engine is done

    def submit(self, context, client: EngineClient) -> str:
        raise NotImplementedError

    def write(self, context, run: JobRun):
        """The Blender-side work on the job's result, as a generator of slices (see Writing)."""
        raise NotImplementedError

    def runs_modal(self, context) -> bool:
        """Whether the work runs on the modal timer; scripts, tests and `blender -b` (no window to
        poll from) wait for it instead."""
        return not self.synchronous and context.window is not None

    def start(self, context) -> JobRun | None:
        """The engine job (None, reported, when it could not be started)."""
        client = connect(self, context)
        if client is None:
            return None
        try:
            run = JobRun(client, self.submit(context, client))
        except (EngineUnavailable, EngineError, ValueError, RuntimeError) as failure:
            self.report({"ERROR"}, f"MoSa: {failure}")
            return None
        _record_job(context.window_manager.mosa_session, run, self.bl_idname, context.scene.mosa.prompt)
        return run

    def execute(self, context):
        global _active_run
        error = self.check_input(context)
        if error:
            self.report({"ERROR"}, error)
            return {"CANCELLED"}
        _active_run = self.start(context)
        if _active_run is None:
            return {"CANCELLED"}
        if not self.runs_modal(context):
            while not self.advance(context):
                if self._writing is None:
                    time.sleep(POLL_S)
            return self.conclude(context)
        self._modal = True
        self._timer = context.window_manager.event_timer_add(POLL_S, window=context.window)
        context.window_manager.progress_begin(0, 1)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC" or _active_run is None or _active_run.state == "cancelled":
            if _active_run is not None:
                _active_run.cancel()
            return self.end_modal(context, self.conclude(context))
        if event.type == "TIMER" and self.advance(context):
            return self.end_modal(context, self.conclude(context))
        return {"PASS_THROUGH"}

    def end_modal(self, context, outcome: set) -> set:
        context.window_manager.event_timer_remove(self._timer)
        context.window_manager.progress_end()
        context.workspace.status_text_set(None)
        return outcome

    def advance(self, context) -> bool:
        """One poll of the engine, or once its job is done, slices of the Blender-side work for
        up to SLICE_S; progress goes to the status bar and the panel. Whether all is over."""
        session = context.window_manager.mosa_session
        if self._writing is None and _active_run.state != "done":
            finished = _active_run.step()
            session.progress, session.status = (
                _active_run.progress,
                f"{_active_run.state} ({_active_run.progress:.0%})",
            )
            if len(session.jobs):
                session.jobs[-1].state = _active_run.state
            if not (finished and _active_run.state == "done"):
                self._show(context, session.progress, session.status)
                return finished
        if self._writing is None:
            self._writing = Writing(context.active_object, self.write(context, _active_run))
        finished = self._writing.run(SLICE_S)
        session.progress, session.status = self._writing.progress, f"writing keys ({self._writing.progress:.0%})"
        self._show(context, session.progress, session.status)
        return finished

    def _show(self, context, progress: float, status: str) -> None:
        if self._modal:
            context.window_manager.progress_update(progress)
            context.workspace.status_text_set(f"MoSa: {status} - Esc cancels")

    def conclude(self, context) -> set:
        global _active_run
        run, _active_run = _active_run, None
        writing, self._writing = self._writing, None
        session = context.window_manager.mosa_session
        if run is None or run.state == "cancelled":
            if writing is not None:
                writing.cancel()
            session.status = "last job cancelled"
            self.report({"WARNING"}, "MoSa: cancelled; nothing changed")
            return {"CANCELLED"}
        if run.state == "failed" or writing.error:
            session.status = "last job failed (its message is in the Info editor)"
            self.report({"ERROR"}, f"MoSa: {run.error or writing.error}")
            return {"CANCELLED"}
        session.status = "last job done"
        mapped = {bone for bone in read_mapping(writing.obj.data.mosa_mapping).bones.values() if bone}
        for warning in pose_warnings(writing.obj, mapped):
            self.report({"WARNING"}, f"MoSa: {warning}")
        return {"FINISHED"}

    def check_input(self, context) -> str:
        """What stops the job before the engine does any work: '' when nothing does."""
        if not context.scene.mosa.prompt.strip():
            return "Type a prompt first: what should the character do?"
        return _mapping_error(context)


def _mapping_error(context) -> str:
    """Why the active rig cannot take a motion ('' when it can): an unmappable rig fails before
    the engine works, not after."""
    try:
        armature_mapping(context.active_object)
    except (ValueError, RuntimeError) as failure:
        return f"MoSa: {failure}"
    return ""


def _scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def _sampling(settings) -> dict:
    """The panel's sampling options, as every job sends them."""
    names = ("guidance", "temperature", "top_k", "top_p")
    return {name: getattr(settings, name) for name in names}


# What of a canonical motion the engine reads from a source (its rotations follow from the positions).
WIRE_FIELDS = ("fps", "positions", "features")


def _wire(motion: dict) -> dict:
    """A source motion as JSON can carry it, only the fields the engine reads."""
    return {
        key: value.tolist() if hasattr(value, "tolist") else value
        for key, value in motion.items()
        if key in WIRE_FIELDS and value is not None
    }


def stored_motion_is_keyed(action, obj) -> bool:
    """Whether the action still has the keys MoSa wrote with its stored motion (not edited since).
    Actions stored before the keys' digest was kept count as unedited."""
    stored = action.get("mosa")
    if stored is None:
        return False
    return "keys" not in stored or stored["keys"] == baking.keys_digest(action, obj)


def active_motion(context) -> tuple[dict, Placing]:
    """The active action as canonical motion, and how it sits on the rig: the one MoSa stored with
    it while its keys are the ones MoSa wrote, else read back from the rig by inverse transfer
    (edited keys, and any action: hand keyed, mocap, another tool's)."""
    obj = context.active_object
    action = obj.animation_data.action
    if stored_motion_is_keyed(action, obj):
        return packed.decode_motion(action["mosa"]["motion"]), stored_placing(action)
    first, last = baking.keyed_span(action)
    return action_to_motion(obj, list(range(first, last + 1)), _scene_fps(context.scene)), Placing(on_rig=True)


def stored_placing(action) -> Placing:
    stored = action["mosa"]
    return Placing(bool(stored.get("on_rig", False)), int(stored.get("placed_from", 0)))


def _action_poll(cls, context) -> bool:
    """An armature with an active action to work on (not variations playing on the NLA)."""
    if not _armature_poll(cls, context):
        return False
    obj = context.active_object
    if obj.animation_data is None or obj.animation_data.action is None:
        cls.poll_message_set(
            "Variations are playing on the NLA: pick one under Takes first"
            if takes.comparison_tracks(obj)
            else "The armature has no action to edit; generate or key one first"
        )
        return False
    return True


def _store(action, obj, motion: dict, prompt: str, seed: int, model: str, placing: Placing = Placing()) -> None:
    """The motion and how it was made, kept with the action and its keys' digest (see active_motion)."""
    action["mosa"] = {
        "prompt": prompt,
        "seed": seed,
        "model": model,
        "motion": packed.encode_motion(motion),
        "keys": baking.keys_digest(action, obj),
        "on_rig": placing.on_rig,
        "placed_from": placing.placed_from,
    }


class MOSA_OT_generate(_JobOperator, bpy.types.Operator):
    """Generate motion from the prompt onto the active armature, one new action per variation"""

    bl_idname = "mosa.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _armature_poll(cls, context)

    def submit(self, context, client):
        settings = context.scene.mosa
        return client.generate(
            settings.prompt,
            seconds=settings.seconds,
            seed=settings.seed,
            samples=settings.variations,
            smooth=settings.smooth,
            **_sampling(settings),
        )

    def write(self, context, run):
        self.report({"INFO"}, (yield from generated_actions(context, run)))


def generated_actions(context, run: JobRun, label: str | None = None, start_frame: int | None = None):
    """Generate's Blender-side work in slices (see Writing): one new action per variation, keyed
    on the active armature, each a take, named after `label` (default: the prompt); returns the
    message to report. The takes are listed and
    the replaced action stashed only after the last slice, so a cancel has nothing to take back there."""
    scene, settings, obj = context.scene, context.scene.mosa, context.active_object
    label = label or settings.prompt
    start_frame = scene.frame_current if start_frame is None else start_frame
    replaced = obj.animation_data.action if obj.animation_data else None
    actions, count = [], len(run.result)
    for number, motion in enumerate(run.result):
        tracks = yield from scaled(
            motion_to_tracks_steps(
                obj,
                motion,
                _scene_fps(scene),
                start_frame,
                foot_lock=settings.foot_lock,
                in_place=settings.in_place,
            ),
            number / count,
            0.95 / count,
        )
        seed = settings.seed + number
        action = bpy.data.actions.new(action_name(label, seed))
        baking.bake_tracks(action, obj, tracks)
        _store(action, obj, motion, label, seed, run.model)
        actions.append(action)
        yield (number + 1) / count
    takes.keep_replaced(obj, replaced)
    for action in actions:
        takes.add_take(obj, action)
    if settings.place_variations == "NLA" and len(actions) > 1:
        takes.compare_on_tracks(obj, actions, start_frame)
        return (
            f"MoSa: {len(actions)} variation(s) on NLA tracks, one after another from frame "
            f"{start_frame}; pick one in Takes to keep it"
        )
    takes.switch_to(obj, actions[0])
    obj.mosa_takes.active_index = len(obj.mosa_takes.items) - len(actions)
    return f"MoSa: {len(actions)} new action(s), first: {actions[0].name}" + (
        "; switch between them in Takes" if len(actions) > 1 else ""
    )


class MOSA_OT_regenerate_range(_JobOperator, bpy.types.Operator):
    """Regenerate the chosen frame range of the active action from the prompt, into a new action"""

    bl_idname = "mosa.regenerate_range"
    bl_label = "Regenerate Range"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _action_poll(cls, context)

    def check_input(self, context) -> str:
        settings = context.scene.mosa
        if settings.range_start == settings.range_end == 0:  # never set: take it from the timeline
            span = timeline_span(context)
            if span is None:
                return "Set the range, a preview range, or select keys to pick the frames to regenerate"
            settings.range_start, settings.range_end = span
        if settings.range_end < settings.range_start:
            return f"The range {settings.range_start}..{settings.range_end} ends before it starts"
        return super().check_input(context)

    def submit(self, context, client):
        settings = context.scene.mosa
        (motion, self._placing), start = (
            active_motion(context),
            baking.keyed_span(context.active_object.animation_data.action)[0],
        )
        mask = spans.canonical_mask(
            (settings.range_start, settings.range_end),
            start,
            _scene_fps(context.scene),
            len(motion["positions"]),
            motion["fps"],
        )
        return client.edit(settings.prompt, _wire(motion), mask.tolist(), seed=settings.seed, **_sampling(settings))

    def write(self, context, run):
        self.report({"INFO"}, (yield from regenerated_action(context, run, self._placing)))


def _tracks_on_rig(
    context,
    motion: dict,
    start_frame: int,
    span: tuple[int, int] | None = None,
    placing: Placing = Placing(),
):
    """The motion on the active rig from `start_frame`, at the scene's rate, with the panel's foot
    lock and in-place options, in slices (see Writing) over the first 95 % of the progress."""
    settings = context.scene.mosa
    steps = motion_to_tracks_steps(
        context.active_object,
        motion,
        _scene_fps(context.scene),
        start_frame,
        foot_lock=settings.foot_lock,
        in_place=settings.in_place,
        span=span,
        on_rig=placing.on_rig,
        placed_from=placing.placed_from,
    )
    return (yield from scaled(steps, 0.0, 0.95))


def _play_new_take(obj: bpy.types.Object, replaced: bpy.types.Action, action: bpy.types.Action) -> None:
    """`action` becomes a take and the rig's action; the one it replaces is kept (takes)."""
    takes.keep_replaced(obj, replaced)
    takes.add_take(obj, action)
    takes.switch_to(obj, action)


def regenerated_action(context, run: JobRun, placing: Placing):
    """Regenerate Range's Blender-side work in slices (see Writing): the edited copy of the
    active action, only the engine frames around the range re-solved, as a new take; returns the
    message. `placing`: how the source motion sat on the rig (active_motion)."""
    settings, obj = context.scene.mosa, context.active_object
    source, motion, span = obj.animation_data.action, run.result[0], (settings.range_start, settings.range_end)
    full = yield from _tracks_on_rig(context, motion, baking.keyed_span(source)[0], span, placing)
    edited = regenerate_span(source, obj, full, span, settings.seam_frames)
    _store(edited, obj, motion, settings.prompt, settings.seed, run.model, placing)
    _play_new_take(obj, source, edited)
    return f"MoSa: frames {span[0]}..{span[1]} regenerated into {edited.name}"


def regenerate_span(source, obj, generated, span: tuple[int, int], seam_frames: int):
    """A copy of `source` whose keys inside `span` come from `generated`, blended into the source at
    the seams (at least `seam_frames`, more where the gap is large); keys outside the span stay
    exactly as they were, and the frames outside it play as before. The source is left untouched."""
    edited = source.copy()
    edited.name = f"{source.name} (edit {span[0]}-{span[1]})"
    baking.bake_keeping_the_rest(edited, obj, blended_span(source, obj, generated, span, seam_frames))
    return edited


def blended_span(source, obj, generated, span: tuple[int, int], seam_frames: int):
    """The tracks of `generated` inside `span`, eased into `source` at both seams (see regenerate_span)."""
    inside = (generated.frames >= span[0]) & (generated.frames <= span[1])
    if not inside.any():
        raise ValueError(f"frames {span[0]}..{span[1]} are outside the generated motion")
    new_part = generated.take(inside)
    # The source one frame beyond each end too: the steps across the seams count.
    around = baking.sample_tracks(
        source, obj, new_part, np.concatenate([[span[0] - 1], new_part.frames, [span[1] + 1]])
    )
    old_part = around.take(slice(1, -1))
    width = spans.seam_width(*_seam_gap_and_budget(around, new_part, seam_frames), seam_frames, int(inside.sum()) // 2)
    weights = spans.seam_weights(inside, width)[inside]
    for bone in new_part.rotations:
        new_part.rotations[bone] = spans.blend_rotations(old_part.rotations[bone], new_part.rotations[bone], weights)
    for bone in new_part.locations:
        new_part.locations[bone] = spans.blend_locations(old_part.locations[bone], new_part.locations[bone], weights)
    return new_part


def _seam_gap_and_budget(around, new_part, seam_frames: int) -> tuple[float, float]:
    """The largest rotation gap at either seam, and how much the blend ramp may add per frame:
    the source's largest step minus the fastest movement near the seams (source or new).
    `around`: the source over the span and one frame beyond each end."""
    gap, largest, near_seams = 0.0, 0.0, 0.0
    edge = max(seam_frames, 2) + 1
    for bone, new in new_part.rotations.items():
        old = around.rotations[bone]
        gap = max(gap, rotations.angle_between(old[[1, -2]], new[[0, -1]]).max())
        old_steps, new_steps = (rotations.angle_between(q[1:], q[:-1]) for q in (old, new))
        if len(new_steps):  # `around` always has steps; a one-frame span has none of its own
            largest = max(largest, old_steps.max())
            near_seams = max(
                near_seams,
                old_steps[:edge].max(),
                old_steps[-edge:].max(),
                new_steps[:edge].max(),
                new_steps[-edge:].max(),
            )
    return gap, largest - near_seams


class MOSA_OT_bake(_JobOperator, bpy.types.Operator):
    """Bake the active action's stored motion onto the rig again, with the foot lock and in-place options"""

    bl_idname = "mosa.bake"
    bl_label = "Bake to Rig"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        if not _armature_poll(cls, context):
            return False
        animation = context.active_object.animation_data
        if animation is None or animation.action is None or "mosa" not in animation.action:
            cls.poll_message_set("The active action carries no MoSa motion; generate one first")
            return False
        return True

    def check_input(self, context) -> str:
        return _mapping_error(context)

    _invoked = False

    def invoke(self, context, event):
        self._invoked = True
        return self.execute(context)

    def runs_modal(self, context) -> bool:
        """The button's bake runs in slices; a script's waits for its keys, as it always has."""
        return self._invoked and super().runs_modal(context)

    def start(self, context) -> JobRun:
        """No engine job: the motion stored with the action is the result."""
        stored = context.active_object.animation_data.action["mosa"]
        return JobRun(
            None, "", model=stored.get("model", ""), state="done", result=[packed.decode_motion(stored["motion"])]
        )

    def write(self, context, run):
        obj = context.active_object
        if not stored_motion_is_keyed(obj.animation_data.action, obj):
            self.report(
                {"WARNING"},
                "MoSa: the action's keys were edited since MoSa made them; Bake keys the motion MoSa made, "
                "and the edits stay in the action",
            )
        self.report({"INFO"}, (yield from baked_action(context, run)))


def baked_action(context, run: JobRun):
    """Bake's Blender-side work in slices (see Writing): the stored motion keyed again into a
    new action with the current foot lock and in-place options; returns the message."""
    obj = context.active_object
    source = obj.animation_data.action
    tracks = yield from _tracks_on_rig(
        context, run.result[0], baking.keyed_span(source)[0], placing=stored_placing(source)
    )
    baked = bpy.data.actions.new(f"{source.name} (baked)")
    baking.bake_tracks(baked, obj, tracks)
    baked["mosa"] = source["mosa"]
    baked["mosa"]["keys"] = baking.keys_digest(baked, obj)
    _play_new_take(obj, source, baked)
    return f"MoSa: baked into {baked.name}"


# --- shots longer than one window: a prompt timeline, extending, in-betweening (engine.timeline) ---
def shot_segments(context) -> list[tuple[str, float]]:
    """The shot's (prompt, seconds) segments: the Prompt Timeline's rows, or the named markers."""
    scene, settings = context.scene, context.scene.mosa
    if settings.shot_source == "MARKERS":
        markers = [(marker.frame, marker.name) for marker in scene.timeline_markers]
        return shots.segments_from_markers(markers, scene.frame_end, _scene_fps(scene))
    return shots.segments_from_rows([(row.prompt, row.seconds) for row in settings.shot_rows])


def _shot_start(context) -> int:
    """Where the shot's action starts: the first named marker, else the current frame."""
    scene = context.scene
    if scene.mosa.shot_source == "MARKERS":
        return min(marker.frame for marker in scene.timeline_markers if marker.name.strip())
    return scene.frame_current


class MOSA_OT_generate_shot(_JobOperator, bpy.types.Operator):
    """Generate one action over the whole shot: the Prompt Timeline's rows (or the scene's markers named with prompts) one after another, of any length"""

    bl_idname = "mosa.generate_shot"
    bl_label = "Generate Shot"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _armature_poll(cls, context)

    def check_input(self, context) -> str:
        try:
            shot_segments(context)
        except ValueError as failure:
            return f"MoSa: {failure}"
        return _mapping_error(context)

    def submit(self, context, client):
        settings = context.scene.mosa
        return client.timeline(
            shot_segments(context), seed=settings.seed, smooth=settings.smooth, **_sampling(settings)
        )

    def write(self, context, run):
        label = shots.shot_label(shot_segments(context))
        self.report({"INFO"}, (yield from generated_actions(context, run, label, _shot_start(context))))


class MOSA_OT_extend(_JobOperator, bpy.types.Operator):
    """Add frames before or after the active action from the prompt, into a new action; the action's own keys stay exactly as they are"""

    bl_idname = "mosa.extend"
    bl_label = "Extend"
    bl_options = {"REGISTER", "UNDO"}

    side: EnumProperty(
        name="Side",
        items=[("AFTER", "After", "Continue the action"), ("BEFORE", "Before", "Lead into the action")],
        default="AFTER",
    )
    _source_frames = 0  # the source motion's canonical frames, for the Blender side

    @classmethod
    def poll(cls, context):
        return _action_poll(cls, context)

    def submit(self, context, client):
        settings, (motion, self._placing) = context.scene.mosa, active_motion(context)
        self._source_frames = len(motion["positions"])
        segment = [(settings.prompt, settings.extend_seconds)]
        side = self.side.lower()
        return client.timeline(segment, source=_wire(motion), side=side, seed=settings.seed, **_sampling(settings))

    def write(self, context, run):
        self.report({"INFO"}, (yield from extended_action(context, run, self.side, self._source_frames, self._placing)))


def extended_action(context, run: JobRun, side: str, source_frames: int, placing: Placing):
    """Extend's Blender-side work in slices (see Writing): a copy of the active action with keys
    added only on the new frames before or after it; returns the message."""
    scene, settings, obj = context.scene, context.scene.mosa, context.active_object
    source, motion, fps = obj.animation_data.action, run.result[0], _scene_fps(scene)
    first, last = baking.keyed_span(source)
    added = shots.added_scene_frames(len(motion["positions"]), source_frames, fps, motion["fps"])
    start = first - added if side == "BEFORE" else first
    if side == "BEFORE":  # the source, placed as it was, now begins after the new frames
        placing = placing.with_frames_before(len(motion["positions"]) - source_frames)
    full = yield from _tracks_on_rig(context, motion, start, placing=placing)
    extended = source.copy()
    extended.name = f"{source.name} (extended {side.lower()} {settings.extend_seconds:g} s)"
    baking.bake_tracks(extended, obj, full.take((full.frames < first) | (full.frames > last)))
    _store(extended, obj, motion, settings.prompt, settings.seed, run.model, placing)
    _play_new_take(obj, source, extended)
    return f"MoSa: {added} frames added {side.lower()} {source.name}, into {extended.name}; its own keys are unchanged"


class MOSA_OT_inbetween_keys(_JobOperator, bpy.types.Operator):
    """Make the motion between the selected keys from the prompt, into a new action: it passes through the keyed poses, whose keys stay as they are"""

    bl_idname = "mosa.inbetween_keys"
    bl_label = "In-between Keys"
    bl_options = {"REGISTER", "UNDO"}

    _scene_keys: list[int] = []  # the selected keys' frames, for the Blender side

    @classmethod
    def poll(cls, context):
        return _action_poll(cls, context)

    def check_input(self, context) -> str:
        obj = context.active_object
        selected = baking.keyed_frames(obj.animation_data.action, obj, selected_only=True)
        self._scene_keys = sorted({int(round(frame)) for frame in selected})
        if len(self._scene_keys) < 2:
            return "Select keys on at least two frames (the key poses) to in-between them"
        return super().check_input(context)

    def submit(self, context, client):
        settings, (motion, self._placing) = context.scene.mosa, active_motion(context)
        start = baking.keyed_span(context.active_object.animation_data.action)[0]
        keys = shots.canonical_key_frames(
            self._scene_keys, start, _scene_fps(context.scene), len(motion["positions"]), motion["fps"]
        )
        try:
            return client.inbetween(settings.prompt, _wire(motion), keys, seed=settings.seed, **_sampling(settings))
        except EngineError as failure:
            if failure.code != "keys_too_close":
                raise
            frames = ", ".join(map(str, self._scene_keys))
            raise ValueError(
                f"The selected keys (frames {frames}) are too close together to in-between: select keys with "
                f"more frames between them (the engine, in its 20 fps frames: {failure.message})"
            ) from None

    def write(self, context, run):
        self.report({"INFO"}, (yield from inbetweened_action(context, run, self._scene_keys, self._placing)))


def inbetweened_action(context, run: JobRun, keys: list[int], placing: Placing):
    """In-between Keys' Blender-side work in slices (see Writing): a copy of the active action whose
    frames between the first and last key come from the motion, the key frames' own keys kept."""
    settings, obj = context.scene.mosa, context.active_object
    source, motion, span = obj.animation_data.action, run.result[0], (keys[0], keys[-1])
    full = yield from _tracks_on_rig(context, motion, baking.keyed_span(source)[0], span, placing)
    edited = source.copy()
    edited.name = f"{source.name} (in-between {keys[0]}-{keys[-1]})"
    for before, after in zip(keys, keys[1:]):  # one stretch at a time: baking replaces every key in its span
        if after - before > 1:
            between = full.take((full.frames > before) & (full.frames < after))
            stretch = blended_span(source, obj, between, (before + 1, after - 1), settings.seam_frames)
            baking.bake_keeping_the_rest(edited, obj, stretch)
    _store(edited, obj, motion, settings.prompt, settings.seed, run.model, placing)
    _play_new_take(obj, source, edited)
    return f"MoSa: frames between the keys {', '.join(map(str, keys))} made into {edited.name}"


class MOSA_OT_shot_row_add(bpy.types.Operator):
    """Add a row to the Prompt Timeline, after the active one"""

    bl_idname = "mosa.shot_row_add"
    bl_label = "Add Row"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = context.scene.mosa
        row = settings.shot_rows.add()
        row.prompt = settings.prompt
        settings.shot_rows.move(len(settings.shot_rows) - 1, min(settings.shot_index + 1, len(settings.shot_rows) - 1))
        settings.shot_index = min(settings.shot_index + 1, len(settings.shot_rows) - 1)
        return {"FINISHED"}


class MOSA_OT_shot_row_remove(bpy.types.Operator):
    """Remove the active row of the Prompt Timeline"""

    bl_idname = "mosa.shot_row_remove"
    bl_label = "Remove Row"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(context.scene.mosa.shot_rows) > 0

    def execute(self, context):
        settings = context.scene.mosa
        settings.shot_rows.remove(settings.shot_index)
        settings.shot_index = max(0, min(settings.shot_index, len(settings.shot_rows) - 1))
        return {"FINISHED"}


class MOSA_OT_use_take(bpy.types.Operator):
    """Play this take on the rig (a chosen variation is kept: any NLA comparison of variations ends; every take stays listed)"""

    bl_idname = "mosa.use_take"
    bl_label = "Use Take"
    bl_options = {"REGISTER", "UNDO"}

    index: IntProperty(name="Take", default=-1, options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        if obj is None or obj.type != "ARMATURE" or not len(obj.mosa_takes.items):
            cls.poll_message_set("The active armature has no takes yet; generate one first")
            return False
        return True

    def execute(self, context):
        obj = context.active_object
        listed = obj.mosa_takes
        index = listed.active_index if self.index < 0 else self.index
        if not 0 <= index < len(listed.items) or listed.items[index].action is None:
            self.report({"ERROR"}, "MoSa: pick a take in the list first")
            return {"CANCELLED"}
        action = listed.items[index].action
        takes.keep(obj, action)
        self.report({"INFO"}, f"MoSa: {obj.name} plays {action.name}")
        return {"FINISHED"}


class MOSA_OT_cancel(bpy.types.Operator):
    """Cancel the running MoSa job; the scene stays as it was"""

    bl_idname = "mosa.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        if _active_run is None:
            cls.poll_message_set("No MoSa job is running")
            return False
        return True

    def execute(self, context):
        _active_run.cancel()
        return {"FINISHED"}


class MOSA_OT_use_preview_range(bpy.types.Operator):
    """Set the range to the preview range, or else to the selected keys of the active action"""

    bl_idname = "mosa.use_preview_range"
    bl_label = "From Timeline"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        span = timeline_span(context)
        if span is None:
            self.report({"ERROR"}, "Set a preview range or select keys to pick the frames")
            return {"CANCELLED"}
        context.scene.mosa.range_start, context.scene.mosa.range_end = span
        return {"FINISHED"}


def timeline_span(context) -> tuple[int, int] | None:
    """The preview range if set, else the span of the active action's selected keys."""
    scene, obj = context.scene, context.active_object
    preview = (scene.frame_preview_start, scene.frame_preview_end) if scene.use_preview_range else None
    action = obj.animation_data.action if obj and obj.animation_data else None
    selected = baking.keyed_frames(action, obj, selected_only=True) if action else []
    return spans.default_span(preview, selected)


CLASSES = (
    MOSA_OT_generate,
    MOSA_OT_regenerate_range,
    MOSA_OT_generate_shot,
    MOSA_OT_extend,
    MOSA_OT_inbetween_keys,
    MOSA_OT_shot_row_add,
    MOSA_OT_shot_row_remove,
    MOSA_OT_bake,
    MOSA_OT_use_take,
    MOSA_OT_cancel,
    MOSA_OT_use_preview_range,
)


register, unregister = bpy.utils.register_classes_factory(CLASSES)
