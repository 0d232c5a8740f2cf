"""sclite scoring in ESPnet's layout: ``score_wer/`` and ``score_cer/`` with ref.trn, hyp.trn, result.txt.

Transcripts go into sclite's ``trn`` format (``TEXT (speaker-utterance)``);
for the CER every character is a token and spaces become ``<space>``.
"""

import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from espnet_distill.data.kaldi_dir import read_kaldi_map
from espnet_distill.utils.fileio import atomic_write

SCLITE_CANDIDATES = ("/usr/lib/sctk/bin/sclite",)  # Debian's sctk package


def find_sclite() -> List[str]:
    """The command that runs sclite: on PATH, Debian's location, or ``sctk sclite``."""
    on_path = shutil.which("sclite")
    if on_path:
        return [on_path]
    for candidate in SCLITE_CANDIDATES:
        if Path(candidate).is_file():
            return [candidate]
    if shutil.which("sctk"):
        return ["sctk", "sclite"]
    raise FileNotFoundError("sclite not found: install Debian's sctk package (tools/install.sh does)")


@dataclass
class Score:
    """sclite's Sum/Avg row: counts of sentences and words, and percentages."""

    snt: int
    wrd: int
    corr: float
    sub: float
    dele: float
    ins: float
    err: float
    s_err: float


def _trn_lines(table: Mapping[str, str], utt2spk: Mapping[str, str], chars: bool) -> List[str]:
    lines = []
    for utt, text in table.items():
        if chars:
            text = " ".join("<space>" if c == " " else c for c in text)
        lines.append(f"{text} ({utt2spk.get(utt, utt)}-{utt})\n")
    return lines


def parse_result(path: Path) -> Score:
    """The Sum/Avg row of a sclite ``result.txt``."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if "Sum/Avg" in line:
            numbers = re.findall(r"[\d.]+", line.split("Sum/Avg", 1)[1])
            snt, wrd, *rest = numbers[:8]
            return Score(int(snt), int(wrd), *(float(v) for v in rest))
    raise ValueError(f"{path}: no Sum/Avg line; is it a sclite result?")


def score(ref_text: Path, hyp_text: Path, utt2spk: Optional[Path], out_dir: Path, chars: bool) -> Score:
    """Score ``hyp_text`` against ``ref_text`` (Kaldi text files) into ``out_dir``.

    Every reference utterance needs a hypothesis line (it may be empty).
    """
    refs = read_kaldi_map(ref_text, allow_empty_value=True)
    hyps = read_kaldi_map(hyp_text, allow_empty_value=True)
    missing = [utt for utt in refs if utt not in hyps]
    if missing:
        raise ValueError(f"{hyp_text}: no hypothesis for {len(missing)} utterances, e.g. {missing[0]!r}")
    extra = [utt for utt in hyps if utt not in refs]
    if extra:
        raise ValueError(f"{hyp_text}: utterance {extra[0]!r} is not in {ref_text}")
    speakers: Dict[str, str] = dict(read_kaldi_map(utt2spk)) if utt2spk is not None else {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in (("ref.trn", refs), ("hyp.trn", {u: hyps[u] for u in refs})):
        with atomic_write(out_dir / name) as f:
            f.writelines(_trn_lines(table, speakers, chars))
    command = find_sclite() + [
        "-r",
        str(out_dir / "ref.trn"),
        "trn",
        "-h",
        str(out_dir / "hyp.trn"),
        "trn",
        "-i",
        "rm",
        "-o",
        "all",
        "stdout",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"sclite failed ({result.returncode}): {result.stderr.strip()[:500]}")
    with atomic_write(out_dir / "result.txt") as f:
        f.write(result.stdout)
    return parse_result(out_dir / "result.txt")


def score_dir(data_dir: Path, decode_dir: Path) -> Dict[str, Dict]:
    """ESPnet's layout: ``decode_dir/score_wer`` and ``score_cer`` for ``decode_dir/text`` against ``data_dir/text``."""
    utt2spk = data_dir / "utt2spk" if (data_dir / "utt2spk").exists() else None
    return {
        kind: asdict(
            score(data_dir / "text", decode_dir / "text", utt2spk, decode_dir / f"score_{kind}", chars=kind == "cer")
        )
        for kind in ("wer", "cer")
    }
