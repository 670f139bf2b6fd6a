"""Hand-written HumanML3D-style captions for every real clip, and the tokens HumanML3D stores.

Each caption was written after measuring the clip as the dataset stores it (looping clips are
chained to at least two seconds, so some show a move twice): direction of travel, turns, which
arm or leg, how high. Sides are the performer's own: +X is the body's left when facing +Z.

HumanML3D's texts/<id>.txt lines carry `caption#tokens#start#end`, with tokens `lemma/POS`
(`a/DET person/NOUN walk/VERB forward/ADV`). `tokens` tags the caption vocabulary with a word
list and a few suffix rules, so no tagger model is needed offline.
"""

from __future__ import annotations

import re

from . import cmu_segments

CAPTIONS: dict[str, list[str]] = {
    "deepmimic_backflip": [
        "a person does two backflips in a row, landing a little further back each time.",
        "someone crouches, swings both arms up and flips backwards twice.",
        "a person performs a back somersault, lands on both feet and does another one.",
        "a man jumps up and backwards, rotating fully in the air, two times.",
        "someone does a standing backflip and then repeats it.",
        "a person bends the knees, leaps backward into a flip and lands on both feet, twice.",
        "an acrobat flips over backwards, lands on the feet and flips again.",
        "a gymnast performs two back flips from a standing start.",
        "someone throws a backward somersault, lands, and throws a second one.",
        "a person launches upward and turns over backwards in the air, two times.",
        "a man does a back tuck and then another back tuck.",
        "someone jumps, pulls the knees to the chest and rotates backwards, twice.",
    ],
    "deepmimic_cartwheel": [
        "a person does a cartwheel to the left.",
        "someone raises both arms, places the left hand then the right hand on the ground and wheels over to the left.",
        "a person turns sideways and cartwheels to their left, landing on both feet.",
        "a man performs a cartwheel moving to his left side and stands up straight.",
        "someone kicks the right leg up and over, rotating sideways through a handstand, travelling left.",
        "a person cartwheels a couple of metres to the left and finishes facing forward again.",
        "a gymnast wheels sideways over the hands, going to the left.",
        "someone turns upside down sideways on the hands and lands back on the feet.",
        "a person does a side handspring to the left.",
        "a child cartwheels across the grass toward their left.",
        "a person puts the hands down to the left and swings the legs over the top.",
        "a woman tips over sideways onto her palms and comes back up on her feet.",
    ],
    "deepmimic_crawl": [
        "a person crawls forward on hands and knees.",
        "someone moves slowly forward on all fours.",
        "a person crawls ahead, moving opposite hands and knees together.",
        "a man crawls on the ground with his head low.",
        "someone on their hands and knees crawls forward a short distance.",
        "a person crawls forward slowly, veering to the left and then straightening out.",
        "a person creeps forward on all fours like a baby.",
        "a child crawls along the floor.",
        "someone goes forward on the hands and knees, keeping low.",
        "a person moves on the floor on the palms and knees.",
        "an adult crawls on the carpet, slowly making progress.",
        "someone creeps ahead, the hands and the knees taking turns.",
    ],
    "deepmimic_dance_a": [
        "a person dances, twirling around to the right with both arms raised over the head, twice.",
        "someone spins to the right while swinging the arms up high, then does it again.",
        "a person dances in a circle to their right, lifting the arms one after the other above the head.",
        "a woman twirls to her right with graceful arm movements, drifting to her left.",
        "someone turns a full circle to the right while dancing with the arms overhead, and repeats.",
        "a person performs a dance turn to the right, raising and lowering both arms.",
        "a ballerina spins around with the arms high, then spins again.",
        "a dancer pirouettes to the right, the hands above the head.",
        "someone twirls gracefully in place with the arms over the head, twice.",
        "a person rotates clockwise while dancing, arms held up.",
        "a woman turns around gracefully with her arms in the air.",
        "someone dances a spinning turn with lifted arms and does it once more.",
    ],
    "deepmimic_dance_b": [
        "a person dances, stepping to the right and back again while raising the left arm and then the right arm.",
        "someone dances from side to side, lifting one arm high and then the other.",
        "a person grooves to their right and returns to the start, waving each arm up above the head in turn.",
        "a man dances, shifting his weight between his feet and moving sideways to his right and back.",
        "someone bounces from one foot to the other and throws the left arm up, then the right arm.",
        "a person dances happily, drifting right and back, with the hands raised high one after the other.",
        "a person dances side to side, pumping one arm up and then the other.",
        "someone grooves, stepping right and back, raising alternate arms to the sky.",
        "a dancer shuffles sideways and back with the arms going up in turn.",
        "a man boogies, swaying and throwing the hands up one at a time.",
        "someone dances at a party, lifting the left hand then the right hand high.",
        "a person sways and steps to the beat, reaching up with each arm in turn.",
    ],
    "deepmimic_getup_facedown": [
        "a person lying face down pushes up with the arms and stands up.",
        "someone gets up from lying on their stomach.",
        "a person lying on the ground face down gets to their feet.",
        "a man pushes himself up off the floor and stands upright.",
        "someone lying prone pushes up, brings the feet under the body and rises.",
        "a person gets up from the ground after lying on their front.",
        "a person lying on the belly gets up onto the feet.",
        "someone face down on the floor pushes off the ground and rises to standing.",
        "a man lying prone does a push up and then stands.",
        "a person on their stomach gets up from the floor.",
        "someone lying face down climbs to their feet.",
        "a woman flat on her stomach gets up and stands straight.",
    ],
    "deepmimic_getup_faceup": [
        "a person lying on their back swings both legs up, rolls forward and stands up.",
        "someone gets up from lying on their back.",
        "a person lying face up rocks back with the legs in the air, then comes up onto the feet.",
        "a man lies on his back, lifts both legs over, sits up and rises to stand.",
        "someone on the floor on their back rolls up to a crouch and stands.",
        "a person gets up off the ground after lying on their back, stepping forward.",
        "a person lying face up gets back on the feet.",
        "someone lying on the back rocks up and stands.",
        "a man on his back rolls up and gets to his feet.",
        "a person flat on their back sits up and then stands up.",
        "someone lying down on the back kicks the legs and gets up.",
        "a woman lying on her back gets up off the floor.",
    ],
    "deepmimic_jump": [
        "a person jumps forward with both feet, twice.",
        "someone crouches and leaps forward, landing on both feet, then jumps again.",
        "a person does two standing long jumps forward.",
        "a man swings his arms and jumps ahead with both feet together two times.",
        "someone bends the knees, swings both arms and jumps forward, and repeats.",
        "a person hops forward with both feet, about a metre each time.",
        "a person does a standing broad jump, then another one.",
        "someone leaps ahead with the feet together, two times.",
        "a kid jumps forward with both feet, then jumps forward again.",
        "a person swings the arms and bounds forward twice.",
        "someone springs forward from a crouch, with the feet side by side.",
        "a man makes two long jumps forward, landing on both feet.",
    ],
    "deepmimic_kick": [
        "a person steps forward and kicks high with the right leg, turning to the left.",
        "someone does a high roundhouse kick with the right foot.",
        "a person kicks with the right leg while spinning to their left.",
        "a man steps in and kicks up to head height with his right leg.",
        "someone swings the right leg up in a high kick and turns left.",
        "a person lifts the right leg high in a turning kick, then puts it down.",
    ],
    "deepmimic_punch": [
        "a person walks forward and to the left, turns and punches with the right hand.",
        "someone steps ahead, turns left and throws a right punch, then turns back.",
        "a person moves forward, twists to the left and punches with the right arm.",
        "a man walks a few steps, strikes with his right fist and turns back to face forward.",
        "someone walks up and hits with the right hand, holding the arm up.",
        "a person steps diagonally forward to the left and punches with the right hand.",
        "a boxer steps in and throws a right punch.",
        "a person walks forward and jabs with the right fist.",
        "someone approaches and hits with the right hand.",
        "a fighter steps forward to the left and punches with the right arm.",
        "a man walks up and strikes with a right jab.",
        "someone walks ahead and throws a punch with the right hand.",
    ],
    "deepmimic_roll": [
        "a person does a forward roll and stands back up.",
        "someone squats, rolls forward over the shoulders and gets back on their feet.",
        "a person somersaults forward on the ground and rises.",
        "a man tucks down, rolls forward and comes up standing.",
        "someone dives into a forward roll and ends standing.",
        "a person crouches down, rolls over forward and stands up again.",
        "a person does a forward somersault on the floor and stands.",
        "someone tucks and rolls forward, then gets up.",
        "a child rolls head over heels forward and stands up.",
        "a gymnast does a forward roll on the mat.",
        "a person crouches, rolls forward over the back and rises to the feet.",
        "someone rolls forward along the ground and stands back up.",
    ],
    "deepmimic_run": [
        "a person runs forward quickly.",
        "someone sprints straight ahead.",
        "a person jogs forward at a fast pace, swinging the arms.",
        "a man runs forward in a straight line.",
        "someone runs fast, covering several metres.",
        "a person is running forward with long strides.",
        "a person runs ahead at full speed.",
        "someone dashes forward.",
        "a runner races straight ahead.",
        "a man sprints forward quickly.",
        "someone jogs forward quickly, pumping the arms.",
        "an athlete runs forward fast.",
    ],
    "deepmimic_spin": [
        "a person spins around to the left twice, swinging the legs up high.",
        "someone winds up to the right, then whirls to the left, kicking both legs up in the air.",
        "a person turns around twice to the left, leaning over and throwing the legs high.",
        "a man does a spinning jump to his left with both legs swinging up, and keeps turning.",
        "someone spins to the left while moving sideways to their left.",
        "a person crouches, spins left with a high leg swing, lands and turns once more.",
        "a person spins to the left, flinging the legs high.",
        "someone whirls around to the left with the legs flying up.",
        "a person twists round and round to the left, throwing the legs up.",
        "a man turns around quickly to his left, swinging the legs in the air.",
        "someone spins on the spot to the left two times with the legs kicking up.",
        "a person rotates to the left, leaning and swinging both legs high.",
    ],
    "deepmimic_spinkick": [
        "a person spins to the left and kicks high with the right leg, twice.",
        "someone does a spinning kick with the right foot and repeats it.",
        "a person turns a full circle to the left and kicks up high with the right leg, two times.",
        "a man jumps, spins left and kicks his right leg up above his head.",
        "someone does two spinning high kicks with the right leg.",
        "a person whirls around to the left, swinging the right leg up in a kick.",
        "a martial artist does a spinning kick with the right leg, twice.",
        "someone turns around to the left and kicks high with the right foot.",
        "a fighter whirls left and kicks with the right leg, then does it again.",
        "a person spins and throws a high roundhouse kick with the right leg.",
        "a man does a spinning roundhouse kick with his right leg, two times.",
        "someone twirls to the left and strikes high with the right foot.",
    ],
    "deepmimic_walk": [
        "a person walks forward at a steady pace.",
        "someone walks straight ahead.",
        "a person walks forward, swinging the arms slightly.",
        "a man walks forward a few steps, drifting a little to his left.",
        "someone strolls forward at a normal speed.",
        "a person takes several steps forward.",
        "a person walks ahead calmly.",
        "someone walks forward at an easy pace.",
        "a man strolls ahead.",
        "a person walks forward normally.",
        "someone walks forward several steps.",
        "a woman walks straight ahead at a normal pace.",
    ],
    # AIST++ takes are captioned by genre and choreography: gBR_sBM is break dance, basic moves.
    "aistpp_gBR_sBM": [
        "a person dances break dance toprock, stepping in place with the arms held out.",
        "someone does break dance footwork while standing, crossing and stepping the feet.",
        "a person dances on the spot, bouncing and stepping from side to side with the arms wide.",
        "a man does a toprock dance, swinging his arms and stepping to the beat.",
        "someone performs a break dance step in place, arms out to the sides.",
        "a person bounces to the music, stepping the feet forward and back with the arms open.",
        "a b-boy dances toprock to the beat with the arms open.",
        "someone dances hip hop footwork on the spot.",
        "a person grooves to the music with break dance steps in place.",
        "a dancer steps side to side to a hip hop beat, arms out.",
        "a man dances break dance steps, bouncing on his feet.",
        "someone bounces and steps to the rhythm, arms spread wide.",
    ],
    # CMU take 111_37, "Wave": the right hand is already up when the take starts.
    "cmu_111_37": [
        "a person waves with the right hand raised beside the head, then lowers the arm.",
        "someone stands still and waves hello with the right hand.",
        "a woman holds her right hand up and waves, then puts it down.",
        "a person standing in place waves the right hand above the shoulder.",
        "someone stands with a raised right hand, waving, and lowers it.",
        "a person waves goodbye with the right hand and then drops the arm.",
        "a person stands and waves at someone with the right hand.",
        "someone keeps the right hand up high and waves it.",
        "a woman waves her right hand near her head, standing still.",
        "a person waves hi with the right arm up and then lowers it.",
        "someone standing waves the right hand from side to side.",
        "a person gives a wave with the right hand and then rests the arm.",
    ],
    # Composed from two real takes (compose.py): the DeepMimic walk, then the CMU wave.
    "composed_walk_wave": [
        "a person walks forward and waves.",
        "a person walks forward, stops and waves with the right hand.",
        "someone walks ahead a few steps, then waves hello with the right hand.",
        "a man walks forward, then raises his right hand and waves.",
        "someone walks straight ahead and then stands waving the right hand.",
        "a person walks a few steps forward, stops and waves goodbye with the right hand.",
        "a person walks up, stops and waves with the right hand raised.",
        "someone strolls forward, comes to a stop and waves.",
        "a person walks forward, halts and gives someone a wave.",
        "a man takes several steps forward and waves with the right hand.",
        "someone walks forward and then waves the right hand beside the head.",
        "a person walks ahead, stops, waves and lowers the arm.",
    ],
}


# Old clips whose action the CMU segments share: one kind, so either counts for the other's prompts.
SHARED_KINDS: dict[str, str] = {"deepmimic_walk": "walk", "deepmimic_jump": "jump forward"}


def captions_for(clip: str) -> list[str]:
    """Captions of a clip or CMU segment; AIST++ takes use those of their genre and choreography code."""
    if clip in cmu_segments.BY_NAME:
        return cmu_segments.captions_for(clip)
    key = clip if clip in CAPTIONS else "_".join(clip.split("_")[:3])
    if key not in CAPTIONS:
        raise ValueError(f"no captions for clip {clip!r}; captioned: {', '.join(sorted(CAPTIONS))}")
    return CAPTIONS[key]


def kind_of(clip: str) -> str:
    """The kind of motion a clip or segment shows: a CMU segment's kind, else the clip itself
    (or the kind it shares with CMU segments)."""
    if clip in cmu_segments.BY_NAME:
        return cmu_segments.BY_NAME[clip].kind
    return SHARED_KINDS.get(clip, clip)


def captions_of_kind(kind: str) -> list[str]:
    """Every caption written for a kind's clips and segments (a clip name that is its own kind: its captions)."""
    clips = [clip for clip in CAPTIONS if kind_of(clip) == kind] + [
        s.name for s in cmu_segments.SEGMENTS if s.kind == kind
    ]
    return list(dict.fromkeys(c for clip in (clips or [kind]) for c in captions_for(clip)))


_SIDE_SWAP = {"left": "right", "right": "left", "leftward": "rightward", "rightward": "leftward"}
_SIDE_WORD = re.compile(r"\b(" + "|".join(_SIDE_SWAP) + r")\b", re.IGNORECASE)


def mirror_caption(caption: str) -> str:
    """The caption of the mirrored motion: left and right swapped, capitals kept."""

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        other = _SIDE_SWAP[word.lower()]
        return other.capitalize() if word[0].isupper() else other

    return _SIDE_WORD.sub(swap, caption)


# The caption vocabulary by part of speech (universal tags, as HumanML3D's spaCy tags), in lemma form.
_VOCABULARY: dict[str, str] = {
    "DET": "a an the his her their both each another every all",
    "PRON": "someone it itself himself herself themselves they he she one something that them",
    "NOUN": (
        "person man woman backflip row time arm leg foot hand knee head ground shoulder side metre "
        "cartwheel handstand distance floor circle movement dance spot weight stomach front back "
        "somersault air fist pace stride line speed step roll kick jump punch footwork beat music "
        "toprock couple four choreography height break body roundhouse turn start acrobat adult "
        "artist athlete b boy baby ballerina belly boxer chest child carpet dancer fighter grass "
        "gymnast handspring heel hello hi goodbye hip jab kid mat palm party progress rhythm runner "
        "sky stop top wave"
        " arabesque arc balance ball ballet basket basketball blade corner direction hair half hoop loop object opponent "
        "path player pose position quarter series shadow shot shower soap square sword swordplay swordsman target thing "
        "tiptoe toe waist way"
    ),
    "VERB": (
        "do land crouch swing flip perform jump rotate repeat bend leap raise place wheel turn "
        "cartwheel finish kick travel crawl move stay dance twirl spin lift drift step groove wave "
        "shift bounce throw push get lie bring rise rock come roll sit stand hop walk strike hit hold "
        "squat somersault tuck dive end run sprint jog cover lean whirl wind keep stroll take put go "
        "cross face be make lower sway twist return veer straighten approach boogie bound climb creep "
        "dash drop fling fly give halt jab launch pull pump race reach rest shuffle spring stop tip "
        "spread pirouette"
        " attack block box change curve defend dribble duck extend fence fight glide grab hurry pick practise regain "
        "retreat rub scoop scrub shoot slash slide stoop stretch touch wash"
    ),
    "AUX": "is are",
    "ADJ": (
        "further little full left right high standing slow close graceful long normal several few "
        "short steady fast straight quick opposite low happy upright open wide prone first next other "
        "alternate broad easy flat martial second"
        " big bouncy brisk calm curved deliberate even exaggerated gentle imaginary large possible relaxed same small "
        "loose split stretched vertical"
    ),
    "ADV": (
        "backwards backward forward forwards up down then again slowly quickly ahead over together "
        "away back sideways slightly around once more diagonally happily upright high straight fast "
        "twice out off fully overhead about calmly clockwise gracefully normally upward still upside "
        "round"
        " afterwards briskly carefully casually far gradually leftward mostly now repeatedly rightward sharply softly very"
    ),
    "ADP": "behind across along beside near toward in on with to of from at onto into over above under between after through by off like for up without",
    "CCONJ": "and or but",
    "SCONJ": "while as if until",
    "NUM": "two one four",
    "PART": "not",
}
_IRREGULAR: dict[str, str] = {
    "lying": "lie",
    "threw": "throw",
    "feet": "foot",
    "stood": "stand",
    "swung": "swing",
    "held": "hold",
    "hurries": "hurry",
    "steadies": "steady",
}
_TAGS: dict[str, str] = {}
for _tag, _words in reversed(list(_VOCABULARY.items())):  # earlier parts of speech win ties
    for _word in _words.split():
        _TAGS[_word] = _tag
# Words that are nouns after a determiner, adjective or preposition ("a kick", "on their back")
# and verbs or adverbs elsewhere ("kicks", "and back again").
_OTHER_THAN_NOUN: dict[str, str] = {
    word: tag for tag in ("ADV", "VERB") for word in _VOCABULARY[tag].split() if word in _VOCABULARY["NOUN"].split()
}
_NOUN_CONTEXT = ("DET", "ADJ", "NUM", "ADP")


def _lemma(word: str) -> str:
    """The vocabulary form of a word: irregular forms, then plural/verb suffixes stripped."""
    if word in _TAGS:
        return word
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    candidates = []
    if word.endswith("ing"):
        stem = word[:-3]
        candidates += [stem, stem + "e", stem[:-1]]  # jumping, dancing, running
    if word.endswith("es"):
        candidates.append(word[:-2])  # crouches
    if word.endswith("s"):
        candidates.append(word[:-1])  # walks
    if word.endswith("ed"):
        candidates += [word[:-2], word[:-1]]  # jumped, danced
    for candidate in candidates:
        if _TAGS.get(candidate) in ("VERB", "NOUN"):
            return candidate
    raise ValueError(f"word {word!r} is not in the caption vocabulary; add it to captions._VOCABULARY")


def tokens(caption: str) -> str:
    """HumanML3D's token field: `lemma/POS` for every word, space separated."""
    pieces = re.findall(r"[a-z]+|[,.;:!?]", caption.lower())
    if not any(piece.isalpha() for piece in pieces):
        raise ValueError(f"caption has no words: {caption!r}")
    tagged: list[str] = []
    previous = ""  # tag of the previous word; punctuation breaks the context
    for piece in pieces:
        if not piece.isalpha():
            previous = ""
            continue
        lemma = _lemma(piece)
        tag = _TAGS[lemma]
        if lemma in _OTHER_THAN_NOUN:
            bare_after_noun = previous == "NOUN" and piece == lemma  # "roundhouse kick"
            tag = "NOUN" if previous in _NOUN_CONTEXT or bare_after_noun else _OTHER_THAN_NOUN[lemma]
        tagged.append(f"{lemma}/{tag}")
        previous = tag
    return " ".join(tagged)
