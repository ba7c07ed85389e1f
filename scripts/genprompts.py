#!/usr/bin/env python3
"""
Generate the stock PBX prompts in C{etc/pbx/} (8 kHz mono 16-bit PCM WAV).

The stock applications need spoken prompts, but recorded voices are
copyrighted material; so the prompts are synthesized: speech with
C{espeak-ng} (resampled here from its 22050 Hz to the 8 kHz telephone rate
pbx-apps.md section 1 asks for, with leading and trailing silence trimmed
to keep the checkout small), tones and the hold music with plain sine
waves.  Run it again after changing a text::

    python3 scripts/genprompts.py [--out etc/pbx]

Without C{espeak-ng} every spoken prompt becomes a distinct short tone
sequence, so the applications still run (and say so on stderr).
"""

import argparse
import io
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import wave

RATE = 8000
PEAK = 0.6 * 32767

SPEECH = {
    "receptionprompt": "Welcome. Please enter the extension of the person you are calling, "
                       "press 0 for the operator, or press 9 for the directory.",
    "invalidextension": "That extension is not valid. Please try again.",
    "transferring": "Please hold while I transfer your call.",
    "directory": "Please enter the first three letters of the person's name.",
    "nomatch": "No match.",
    "namefound": "To call this person, press 1.",
    "greeting": "The person you are calling is not available. "
                "Please leave a message after the tone.",
    "messagesaved": "Your message has been saved. Goodbye.",
    "goodbye": "Goodbye.",
    "enterextension": "Please enter your extension, followed by pound.",
    "enterpin": "Please enter your PIN, followed by pound.",
    "wrongpin": "Incorrect PIN.",
    "youhave": "You have",
    "newmessages": "new messages.",
    "nomessages": "You have no new messages.",
    "mailboxmenu": "Press 1 to listen, 7 to delete, 9 to save, 3 for the next message, "
                   "or star to exit.",
    "messagedeleted": "Message deleted.",
    "conferencewelcome": "You are joining the conference.",
    "queuewelcome": "All our agents are busy. Please hold.",
    "queueposition": "Your position in the queue is",
    "greetingmenu": "To record your personal greeting, press 5.",
    "recordgreeting": "Record your greeting after the tone, then press pound.",
    "greetingsaved": "Your greeting has been saved.",
    "blocked": "This call is not allowed.",
    "unavailable": "The number you are calling is not available.",
}
for _n, _word in enumerate("zero one two three four five six seven eight nine".split()):
    SPEECH["digit%d" % (_n,)] = _word


# -- synthesis ------------------------------------------------------------------

def tone(freqs, seconds, level=1.0, fade=0.01):
    """
    A sum of sines with short linear fades (no clicks).

    @return: a list of float samples in [-1, 1].
    """
    n = int(RATE * seconds)
    fadeN = max(1, int(RATE * fade))
    out = []
    for i in range(n):
        t = i / RATE
        v = sum(math.sin(2 * math.pi * f * t) for f in freqs) / len(freqs)
        env = min(1.0, i / fadeN, (n - 1 - i) / fadeN)
        out.append(level * v * env)
    return out


def silence(seconds):
    return [0.0] * int(RATE * seconds)


def chime(notes):
    """
    Two-tone chime: each note a short sine with a decaying envelope.
    """
    out = []
    for f in notes:
        n = int(RATE * 0.18)
        for i in range(n):
            t = i / RATE
            out.append(0.8 * math.sin(2 * math.pi * f * t) * math.exp(-6 * t)
                       * min(1.0, i / 40))
    return out


def holdMusic(seconds=8.0):
    """
    A gentle, original melody: a C major arpeggio pattern with a soft
    harmonic and a bell-like envelope per note.
    """
    scale = [261.63, 329.63, 392.00, 523.25, 392.00, 329.63, 293.66, 349.23,
             440.00, 349.23, 293.66, 246.94, 261.63, 329.63, 392.00, 329.63]
    beat = seconds / len(scale)
    out = []
    for f in scale:
        n = int(RATE * beat)
        for i in range(n):
            t = i / RATE
            env = min(1.0, i / 80) * math.exp(-2.5 * t)
            v = math.sin(2 * math.pi * f * t) + 0.25 * math.sin(2 * math.pi * 2 * f * t)
            out.append(0.5 * env * v / 1.25)
    return out


def fallbackSpeech(name):
    """
    A distinct tone sequence for a prompt when espeak-ng is missing: the
    name's letters pick the pitches.
    """
    out = []
    for c in name[:6]:
        out += tone([300 + (ord(c) % 26) * 30], 0.12) + silence(0.03)
    return out


def espeak(text):
    """
    @return: float samples at 8 kHz, or C{None} without espeak-ng.
    """
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "out.wav")
        subprocess.run([exe, "-s", "150", "-w", path, text], check=True)
        with wave.open(path, "rb") as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            frames = w.readframes(w.getnframes())
    if width != 2 or channels != 1:
        raise SystemExit("unexpected espeak output format")
    samples = [s / 32768 for s in struct.unpack("<%dh" % (len(frames) // 2), frames)]
    return resample(samples, rate, RATE)


def resample(samples, rateIn, rateOut):
    """
    Down-sample by averaging the input samples that fall in each output
    sample's window (a box low-pass filter, enough against aliasing for
    speech), up-sample by linear interpolation.
    """
    if rateIn == rateOut or not samples:
        return list(samples)
    ratio = rateIn / rateOut
    n = int(len(samples) / ratio)
    out = []
    if ratio > 1:
        for i in range(n):
            lo = int(i * ratio)
            hi = max(lo + 1, int((i + 1) * ratio))
            window = samples[lo:hi]
            out.append(sum(window) / len(window))
        return out
    for i in range(n):
        x = i * ratio
        j = int(x)
        frac = x - j
        nxt = samples[j + 1] if j + 1 < len(samples) else samples[j]
        out.append(samples[j] * (1 - frac) + nxt * frac)
    return out


def trim(samples, threshold=0.01, margin=0.05):
    """
    Cut leading and trailing silence, keeping a short margin.
    """
    loud = [i for i, s in enumerate(samples) if abs(s) > threshold]
    if not loud:
        return samples
    keep = int(RATE * margin)
    return samples[max(0, loud[0] - keep):loud[-1] + keep]


def normalize(samples):
    peak = max((abs(s) for s in samples), default=0)
    if peak == 0:
        return samples
    return [s / peak for s in samples]


def wavBytes(samples):
    """
    @return: a RIFF/WAVE file: one C{data} chunk, 8 kHz mono 16-bit PCM.
    """
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(struct.pack("<%dh" % (len(samples),),
                                  *(max(-32767, min(32767, int(round(s * PEAK))))
                                    for s in samples)))
    return buf.getvalue()


# -- the billing plan and the index --------------------------------------------------

BILLING_PLAN = """\
// The example billing plan of pbx-apps.md 5.3, selected by PSTNBillingPlan = standard.
// Keys are number prefixes without '+'; the longest matching prefix wins.
// A number is the cost per minute, a string the reason the call is refused.
{
  1990 = blocked;   // calls to +1-990-XXX-XXXX are blocked
  1    = #0;        // North American numbers are free
  ""   = #10;       // everything else: 10 units per minute
}
"""


def readme(names):
    lines = [
        "The stock PBX environment (pbx-apps.md section 1).",
        "",
        "Generated by scripts/genprompts.py: speech by espeak-ng resampled to 8 kHz,",
        "tones and hold music synthesized; 8 kHz mono 16-bit PCM WAV throughout.",
        "Servers and Domains override any file by storing one of the same name in",
        "their custom environment (STORESERVERPBXFILE / STOREDOMAINPBXFILE).",
        "",
        "Files:",
        "  billingplan-standard.objdata  the example billing plan of section 5.3",
    ]
    for name in names:
        text = SPEECH.get(name[:-4])
        lines.append("  %-28s %s" % (name, '"%s"' % text if text else SYNTH_TEXT[name[:-4]]))
    return "\n".join(lines) + "\n"


SYNTH_TEXT = {
    "beep": "0.3 s 1000 Hz tone",
    "conferencejoin": "rising two-tone chime",
    "conferenceleave": "falling two-tone chime",
    "holdmusic": "8 s synthesized melody",
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--out", default=os.path.join(here, "etc", "pbx"))
    options = parser.parse_args(argv)
    os.makedirs(options.out, exist_ok=True)

    sounds = {
        "beep": tone([1000], 0.3),
        "conferencejoin": chime([660, 880]),
        "conferenceleave": chime([880, 660]),
        "holdmusic": holdMusic(),
    }
    warned = False
    for name, text in SPEECH.items():
        samples = espeak(text)
        if samples is None:
            if not warned:
                sys.stderr.write("espeak-ng not found: spoken prompts become tone sequences\n")
                warned = True
            samples = fallbackSpeech(name)
        else:
            samples = normalize(trim(samples))
        sounds[name] = samples

    written = []
    for name in sorted(sounds):
        fileName = name + ".wav"
        with open(os.path.join(options.out, fileName), "wb") as f:
            f.write(wavBytes(sounds[name]))
        written.append(fileName)
    with open(os.path.join(options.out, "billingplan-standard.objdata"), "w") as f:
        f.write(BILLING_PLAN)
    with open(os.path.join(options.out, "README"), "w") as f:
        f.write(readme(written))
    total = sum(os.path.getsize(os.path.join(options.out, n)) for n in os.listdir(options.out))
    print("wrote %d prompts to %s (%d bytes in all)" % (len(written), options.out, total))


if __name__ == "__main__":
    main()
