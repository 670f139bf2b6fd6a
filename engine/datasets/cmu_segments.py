"""The CMU segments of the demo dataset: which frames of which take, what kind of motion, captions.

Each segment is one action of one CMU trial (frames at 20 fps of the take as cmu_takes converts
it), cut where the trial's CMU description ("playground - forward jumps, turn around") and the
motion itself (root path, heading, pelvis and hand heights, contact sheets) show one action
ending and the next beginning. Kinds group segments that show the same action (every plain walk
is "walk"), so the evaluation asks for a kind and any of its segments counts. The captions were
written here for these segments, in HumanML3D's style, from the description and the measured
motion (direction of travel, turns, which hand, how high); sides are the performer's own.

Left out: the playground climbing of trials 01_08 (after its first steps) and 01_14, whose feet
rest on equipment far above the floor; the uneven-terrain walks 03_01 and 03_02 (feet off the
floor, a jumping hand); the runs of subject 9 and 02_03 (1.1 to 1.4 s, too short for a sample);
09_10 (broken: a joint jumps 3 m).
"""

from __future__ import annotations

from dataclasses import dataclass

from retarget import canonical


@dataclass(frozen=True)
class Segment:
    """One action of one CMU trial: frames start..end (20 fps) of the converted take."""

    name: str  # cmu_<subject>_<trial>_<part>
    take: str  # subject_trial, e.g. "02_05"
    start: int
    end: int | None  # None: to the end of the take
    kind: str  # what is done, shared by the segments of one action
    captions: str  # key of CAPTIONS


CAPTIONS: dict[str, list[str]] = {
    "walk": [
        "a person walks forward.",
        "someone walks straight ahead at a normal pace.",
        "a man takes a few steps forward.",
        "a person walks forward in a straight line, arms swinging by the sides.",
        "someone walks ahead a few metres.",
        "a woman walks forward at an even speed.",
        "a person walks in a straight line.",
        "someone steps forward, one foot after the other, and keeps walking.",
        "a person walks forward casually.",
        "a man walks ahead with loose arms.",
    ],
    "walk veering right": [
        "a person walks forward and slowly curves to the right.",
        "someone walks ahead, bending the path to their right.",
        "a man walks forward, turning gradually right as he goes.",
        "a person walks in a gentle arc to the right.",
        "someone walks forward, drifting to the right near the end.",
        "a woman walks ahead and veers right.",
        "a person walks, curving a little to the right.",
        "someone walks forward along a path that bends right.",
    ],
    "slow walk": [
        "a person walks forward slowly.",
        "someone walks ahead at a slow pace.",
        "a man takes slow steps forward.",
        "a person walks slowly in a straight line.",
        "someone walks forward carefully, taking their time.",
        "a woman walks ahead with slow, long steps.",
        "a person walks forward at a calm, slow speed.",
        "someone slowly walks a few metres ahead.",
    ],
    "brisk walk": [
        "a person walks forward quickly.",
        "someone walks ahead at a brisk pace.",
        "a man walks fast in a straight line.",
        "a person hurries forward with quick steps.",
        "someone walks forward briskly, swinging the arms.",
        "a woman walks quickly ahead.",
        "a person walks forward at a fast pace.",
        "someone takes fast steps forward.",
    ],
    "stride walk": [
        "a person walks forward with long, exaggerated steps.",
        "someone walks ahead taking very big strides.",
        "a man strides forward, lifting the knees high.",
        "a person walks forward with large, deliberate steps.",
        "someone walks ahead with an exaggerated stride.",
        "a woman takes long steps forward.",
        "a person walks forward, stretching each step far.",
        "someone walks with big, bouncy strides straight ahead.",
    ],
    "walk turn right": [
        "a person walks forward and then turns to the right.",
        "someone walks ahead a few steps and turns right.",
        "a man walks forward and makes a right turn.",
        "a person walks forward, then changes direction to their right.",
        "someone walks forward and curves sharply right.",
        "a woman walks ahead and turns right at the end.",
        "a person walks a few steps and turns toward the right.",
        "someone walks forward, then turns a quarter to the right.",
    ],
    "forward hops": [
        "a person jumps forward several times with both feet together.",
        "someone hops forward again and again on both feet.",
        "a person does a series of two-footed jumps forward.",
        "a kid jumps ahead with the feet together, over and over.",
        "someone bends the knees and jumps forward repeatedly.",
        "a person keeps jumping forward with both feet.",
        "a man makes a row of small jumps forward, landing on both feet each time.",
        "someone bounces forward in jumps, swinging the arms.",
    ],
    "single forward jump": [
        "a person jumps forward once with both feet.",
        "someone crouches, swings the arms and jumps forward.",
        "a person does one standing long jump forward.",
        "a man bends the knees and leaps ahead, landing on both feet.",
        "someone stands still, then jumps forward and lands.",
        "a person swings both arms back and jumps forward as far as possible.",
        "a woman takes one big jump forward from standing.",
        "someone jumps ahead with the feet together and stands up.",
    ],
    "jump up": [
        "a person jumps straight up in place.",
        "someone crouches and jumps up, landing in the same spot.",
        "a person does a vertical jump and lands on both feet.",
        "a man bends the knees and springs straight up.",
        "someone stands still, jumps up high and lands.",
        "a person swings the arms and jumps upward on the spot.",
        "a woman squats down and jumps up once.",
        "someone jumps up in place and then stands still.",
    ],
    "jump and balance": [
        "a person jumps up in place and then stands balancing.",
        "someone crouches, jumps straight up, lands and steadies themselves.",
        "a person jumps once and keeps their balance after landing.",
        "a man springs up, lands on both feet and stands still.",
        "someone does a vertical jump and balances on the landing.",
        "a person jumps upward and stands steady afterwards.",
        "a woman squats, jumps up and holds still after the landing.",
        "someone jumps up on the spot and regains balance.",
    ],
    "turn around right": [
        "a person turns around to the right.",
        "someone turns in place to face the other way, turning right.",
        "a person steps around to their right until facing back.",
        "a man turns around on the spot, to the right.",
        "someone turns half a circle to the right.",
        "a person shuffles the feet and turns right to face behind.",
        "a woman turns to the right and ends up facing back.",
        "someone turns right around in place.",
    ],
    "turn around left": [
        "a person turns around to the left.",
        "someone turns in place to face the other way, turning left.",
        "a person steps around to their left until facing back.",
        "a man turns around on the spot, to the left.",
        "someone turns half a circle to the left.",
        "a person shuffles the feet and turns left to face behind.",
        "a woman turns to the left and ends up facing back.",
        "someone turns left around in place.",
    ],
    "punches high": [
        "a person stands and punches forward with the right fist.",
        "someone throws punches at head height, mostly with the right hand.",
        "a person boxes in place, jabbing forward with the right arm.",
        "a man punches ahead again and again with the right hand.",
        "someone strikes forward with the right fist several times.",
        "a boxer stands in place and throws right punches.",
        "a person shadow boxes, punching forward with the right arm.",
        "someone stands still and jabs the right fist forward repeatedly.",
    ],
    "punches low": [
        "a person crouches low and strikes with both hands.",
        "someone bends the knees and punches low in front.",
        "a person ducks down and throws low punches.",
        "a man lowers the body and strikes forward at waist height.",
        "someone crouches and hits low with the fists, then stands up.",
        "a boxer crouches and throws punches at a low target.",
        "a person squats a little and punches down in front.",
        "someone stays low, striking forward, and rises at the end.",
    ],
    "scoop up": [
        "a person bends over, scoops something up from the floor and lifts the right arm.",
        "someone bends down to pick something up and raises it high with the right hand.",
        "a person repeatedly bends to the ground, picks something up and lifts it overhead.",
        "a man bends down, scoops with the hands, stands up and raises the right arm.",
        "someone picks things up from the floor and lifts them up with the right hand, several times.",
        "a person stoops, grabs something from the ground and holds it up high.",
        "a woman bends over and lifts something up above the head with the right arm, again and again.",
        "someone crouches down, scoops, rises and reaches up with the right hand.",
    ],
    "swordplay": [
        "a person fights with a sword held in both hands.",
        "someone swings a sword, slashing and blocking.",
        "a person practises swordplay, stepping and striking.",
        "a man fences with a sword, turning from side to side.",
        "someone holds a sword up and slashes at an opponent.",
        "a swordsman attacks and defends, swinging the blade.",
        "a person swings a sword in front of them, stepping around.",
        "someone fights an imaginary opponent with a sword.",
    ],
    "wash legs": [
        "a person bends over and washes the legs.",
        "someone bends down and scrubs the legs and feet.",
        "a person leans forward and rubs the legs as if washing.",
        "a man bends over and washes his lower legs.",
        "someone stoops and scrubs the legs with both hands.",
        "a person washes the legs, bending down low.",
        "a woman bends forward to wash her legs and feet.",
        "someone bends down and rubs soap on the legs.",
    ],
    "wash body": [
        "a person stands and washes the face, arms and body.",
        "someone scrubs the head and arms as if in the shower.",
        "a person rubs the hair and then washes the left arm with the right hand.",
        "a man stands still and washes himself, hands moving over the body.",
        "someone washes the hair with both hands and then scrubs the arm.",
        "a person stands in place and scrubs the chest and arms.",
        "a woman washes her hair and her arms.",
        "someone rubs soap on the head, the shoulders and the arms.",
    ],
    "ballet spins": [
        "a dancer does ballet turns, spinning on one foot.",
        "a ballerina performs pirouettes.",
        "someone spins around several times on one leg, arms curved.",
        "a person dances ballet, turning quickly in place.",
        "a dancer spins on the toes with the arms held in front.",
        "a ballet dancer does a series of turns.",
        "someone turns around and around on one foot like a ballerina.",
        "a person performs ballet spins with graceful arms.",
    ],
    "ballet poses": [
        "a ballet dancer lifts one leg behind and holds an arabesque.",
        "a ballerina steps, raises a leg back and extends the arms.",
        "someone does graceful ballet steps and poses on one leg.",
        "a dancer stands on one foot with the other leg stretched behind.",
        "a person performs slow ballet moves, lifting a leg high.",
        "a ballet dancer moves the arms gracefully and raises a leg.",
        "someone balances on one leg, arms open, in a ballet pose.",
        "a dancer glides through ballet positions.",
    ],
    "ballet leaps": [
        "a ballet dancer leaps through the air and turns.",
        "a ballerina does big jumps with the legs split.",
        "someone runs a few steps and leaps, turning in the air.",
        "a dancer performs ballet leaps and lands softly.",
        "a person does a turning ballet jump.",
        "a ballet dancer springs from one foot and lands on the other.",
        "someone leaps gracefully across the floor.",
        "a dancer jumps high with stretched legs and spins.",
    ],
    "dribble forward": [
        "a person dribbles a basketball while walking forward.",
        "someone bounces a ball with the hand and moves ahead.",
        "a basketball player dribbles forward.",
        "a person walks forward bouncing a basketball.",
        "someone moves forward, dribbling a ball at the side.",
        "a man dribbles the ball as he goes forward.",
        "a player runs forward slowly while dribbling.",
        "someone bounces a basketball and walks straight ahead.",
    ],
    "dribble backward": [
        "a person dribbles a basketball while walking backwards.",
        "someone bounces a ball and steps backward.",
        "a basketball player dribbles and backs up.",
        "a person moves backwards, bouncing a basketball.",
        "someone walks backward while dribbling a ball.",
        "a man retreats backwards, dribbling.",
        "a player backs away, keeping the ball bouncing.",
        "someone dribbles a ball and moves back.",
    ],
    "dribble sideways": [
        "a person dribbles a basketball while moving sideways to the left.",
        "someone shuffles to their left, bouncing a ball.",
        "a basketball player side steps left while dribbling.",
        "a person moves sideways to the left, dribbling a basketball.",
        "someone steps to the left side, keeping the ball bouncing.",
        "a man dribbles and shuffles left.",
        "a player slides to the left with the ball.",
        "someone side steps leftward while dribbling.",
    ],
    "dribble turns left": [
        "a person dribbles a basketball forward and makes turns to the left.",
        "someone dribbles a ball, turning left several times.",
        "a basketball player dribbles around in a square, turning left.",
        "a person bounces a basketball and walks, turning left at each corner.",
        "someone dribbles forward and turns left, then left again.",
        "a man dribbles the ball and makes left turns.",
        "a player dribbles in a loop to the left.",
        "someone walks with the ball, dribbling and turning to the left.",
    ],
    "dribble turns right": [
        "a person dribbles a basketball forward and makes turns to the right.",
        "someone dribbles a ball, turning right several times.",
        "a basketball player dribbles around in a square, turning right.",
        "a person bounces a basketball and walks, turning right at each corner.",
        "someone dribbles forward and turns right, then right again.",
        "a man dribbles the ball and makes right turns.",
        "a player dribbles in a loop to the right.",
        "someone walks with the ball, dribbling and turning to the right.",
    ],
    "basketball shot": [
        "a person dribbles a basketball and then shoots it.",
        "someone bounces the ball, jumps and shoots.",
        "a basketball player dribbles and takes a shot.",
        "a person dribbles in place, then lifts both arms and throws the ball up.",
        "someone dribbles a ball and shoots it at a hoop.",
        "a man dribbles, raises the ball over the head and shoots.",
        "a player bounces the ball and makes a jump shot.",
        "someone dribbles and then throws the ball up toward the basket.",
    ],
    "reach up": [
        "a person reaches up high with both hands and jumps to grab something.",
        "someone stands on tiptoe and stretches both arms overhead.",
        "a person jumps up, reaching for something above.",
        "a man reaches overhead, rising on the toes, and hops to grab.",
        "someone stretches up with the arms raised and jumps to touch something high.",
        "a person steps around, reaching up and jumping to grab an object overhead.",
        "a woman rises on her toes and reaches for something high up.",
        "someone keeps reaching upward with both hands, jumping now and then.",
    ],
}


def _cut(take: str, part: str, start_s: float, end_s: float | None, kind: str, captions: str) -> Segment:
    return Segment(
        f"cmu_{take}_{part}",
        take,
        round(start_s * canonical.FPS),
        None if end_s is None else round(end_s * canonical.FPS),
        kind,
        captions,
    )


def _whole(take: str, kind: str, captions: str) -> Segment:
    return _cut(take, "a", 0.0, None, kind, captions)


_WALKS = [
    "02_01",
    "02_02",
    "06_01",
    "07_01",
    "07_02",
    "07_03",
    "07_06",
    "07_07",
    "07_08",
    "07_09",
    "07_10",
    "07_11",
    "08_01",
    "08_02",
    "08_03",
    "08_05",
    "08_06",
    "08_08",
    "08_09",
    "08_10",
    "10_04",
    "12_01",
    "12_02",
    "12_03",
]
SEGMENTS: list[Segment] = [
    *[_whole(take, "walk", "walk") for take in _WALKS],
    _whole("05_01", "walk", "walk veering right"),
    *[_whole(take, "walk", "slow walk") for take in ("07_04", "07_05", "08_04", "08_11")],
    _whole("07_12", "walk", "brisk walk"),
    _whole("08_07", "walk", "stride walk"),
    _cut("01_08", "a", 0.0, 3.0, "walk", "walk turn right"),
    # playground: forward jumps, turn around
    _cut("01_01", "a", 0.0, 7.6, "jump forward", "forward hops"),
    _cut("01_01", "b", 7.6, 10.0, "turn around", "turn around right"),
    _cut("01_01", "c", 10.0, 16.0, "jump forward", "forward hops"),
    _cut("01_01", "d", 16.0, 18.2, "turn around", "turn around left"),
    _cut("01_01", "e", 18.2, None, "jump forward", "forward hops"),
    *[_whole(take, "jump forward", "single forward jump") for take in ("13_11", "13_13", "13_32")],
    *[_whole(take, "jump up", "jump up") for take in ("13_39", "13_40", "13_41", "13_42", "16_01", "16_02")],
    _whole("02_04", "jump up", "jump and balance"),
    _cut("02_05", "a", 0.5, 9.0, "boxing", "punches high"),
    _cut("02_05", "b", 9.0, 14.5, "boxing", "punches low"),
    _cut("02_06", "a", 0.0, 9.2, "scoop up", "scoop up"),
    _cut("02_06", "b", 9.2, None, "scoop up", "scoop up"),
    _cut("02_07", "a", 0.0, 9.4, "swordplay", "swordplay"),
    _cut("02_07", "b", 9.4, None, "swordplay", "swordplay"),
    _whole("02_08", "swordplay", "swordplay"),
    _whole("02_09", "swordplay", "swordplay"),
    _cut("02_10", "a", 0.0, 10.0, "wash", "wash legs"),
    _cut("02_10", "b", 10.0, None, "wash", "wash body"),
    *[_whole(take, "ballet", "ballet spins") for take in ("05_02", "05_06", "05_08", "05_11", "05_13")],
    *[
        _whole(take, "ballet", "ballet poses")
        for take in ("05_03", "05_04", "05_09", "05_10", "05_12", "05_14", "05_15")
    ],
    *[
        _whole(take, "ballet", "ballet leaps")
        for take in ("05_05", "05_07", "05_16", "05_17", "05_18", "05_19", "05_20")
    ],
    *[_whole(take, "dribble", "dribble forward") for take in ("06_02", "06_03", "06_04", "06_05")],
    *[_whole(take, "dribble", "dribble backward") for take in ("06_06", "06_07")],
    *[_whole(take, "dribble", "dribble sideways") for take in ("06_08", "06_09")],
    _whole("06_10", "dribble", "dribble turns left"),
    *[_whole(take, "dribble", "dribble turns right") for take in ("06_11", "06_12")],
    *[_whole(take, "basketball shot", "basketball shot") for take in ("06_14", "06_15")],
    *[
        _cut(take, part, start, end, "reach up", "reach up")
        for take in ("13_10", "14_07", "14_08")
        for part, start, end in (("a", 0.0, 7.0), ("b", 7.0, 14.0), ("c", 14.0, None))
    ],
]
BY_NAME: dict[str, Segment] = {segment.name: segment for segment in SEGMENTS}


def captions_for(name: str) -> list[str]:
    return CAPTIONS[BY_NAME[name].captions]
