"""The commands the README, the recipe READMEs and docs/ show, and how the tests run each one.

``documented_commands()`` reads every ```` ```bash ```` block of the documents
in :data:`DOCUMENTS` (a ``cd`` line sets the directory of the lines after it;
``\\`` continues a line; ``#`` starts a comment).  :data:`PLANS` says, for each
command, where the tests run it and with which tiny-size options appended.  A
test holds the two to each other, so a command added to a document without a
plan, or a plan whose command left the documents, fails the fast tier.
"""

import dataclasses
import re
import shlex
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from tests.conftest import REPO_ROOT

DOCUMENTS = (
    "README.md",
    "egs/mini_synth/asr1/README.md",
    "egs/librispeech/asr1/README.md",
    "egs/mini_synth/asr1/pretrained/asr_mini_fbank/README.md",
    "docs/*.md",
)


@dataclasses.dataclass(frozen=True)
class DocCommand:
    """One command line of a document, in the directory its block's ``cd`` names (repo-relative)."""

    doc: str
    line: int
    cwd: str
    text: str  # the command, its words joined by single spaces (quotes kept as in the document)

    @property
    def key(self) -> Tuple[str, str]:
        return self.cwd, self.text


def _logical_lines(block: List[Tuple[int, str]]):
    pending, start = "", None
    for number, raw in block:
        line = raw.strip()
        if start is None:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield start, pending + line
        pending, start = "", None


def _without_comment(line: str) -> str:
    words = shlex.shlex(line, posix=True, punctuation_chars=False)
    words.whitespace_split = True
    words.commenters = "#"
    kept = list(words)  # raises on unbalanced quotes: a broken document
    if not kept:
        return ""
    # Keep the document's own quoting: cut the line where its comment starts (outside quotes).
    quote, out = None, []
    for ch in line:
        if quote is None and ch == "#" and (not out or out[-1].isspace()):
            break
        if ch in "\"'":
            quote = None if quote == ch else (ch if quote is None else quote)
        out.append(ch)
    return " ".join("".join(out).split())


def documented_commands(root: Path = REPO_ROOT) -> List[DocCommand]:
    """Every command of every ``bash`` block of :data:`DOCUMENTS`, in document order."""
    commands = []
    paths = sorted({p for pattern in DOCUMENTS for p in root.glob(pattern)})
    for path in paths:
        doc = str(path.relative_to(root))
        lines = path.read_text(encoding="utf-8").splitlines()
        block: Optional[List[Tuple[int, str]]] = None
        for number, line in enumerate(lines, 1):
            fence = line.strip()
            if block is None and fence == "```bash":
                block = []
            elif block is not None and fence.startswith("```"):
                cwd = "."
                for start, logical in _logical_lines(block):
                    text = _without_comment(logical)
                    if not text:
                        continue
                    words = shlex.split(text)
                    if words[0] == "cd":
                        cwd = words[1]
                        continue
                    commands.append(DocCommand(doc, start, cwd, text))
                block = None
            elif block is not None:
                block.append((number, line))
    return commands


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a test runs a documented command.

    ``where``: the scenario that runs it (the tiny mini recipe copy, ...) or, for
    ``covered``, the test that runs it (``tests/<file>::<name>``) and whose file
    must contain the command's words.  ``append``: options added at the end (the
    tiny size); ``subs``: text replaced in the command (placeholders such as
    ``/path/to/...``, stated in ``why``).
    """

    where: str
    append: str = ""
    subs: Tuple[Tuple[str, str], ...] = ()
    why: str = ""

    def command(self, text: str, values: Dict[str, str]) -> str:
        for old, new in self.subs:
            assert old in text, (old, text)
            text = text.replace(old, new.format(**values))
        return f"{text} {self.append.format(**values)}".strip()


# The tiny size of the mini recipe: the tiny corpus, two training steps a model, short benchmarks.
SHORT_TRAINING = "--max_epoch 1 --num_iters_per_epoch 2 --batch_bins 200000 --num_workers 0"
MINI_TINY = (
    "--local_data_opts '--size tiny' --nj 2 "
    f"--distill_args '{SHORT_TRAINING}' --finetune_args '{SHORT_TRAINING}' "
    "--benchmark_args '--max_utts 2 --repeats 1 --warmup 1'"
)
STUDY_TINY = (
    "--size tiny --seeds 2 --repeat conf/distill/deep_thin_reg_kl.yaml --grid deep_thin_reg_kl --prune '' --lm false "
    '--superb_upstreams "fbank teacher" --superb_seeds 1 '
    "--superb_low_configs deep_thin_reg_kl --superb_low_upstreams distilled "
    f"--run_args \"--nj 2 --distill_args '{SHORT_TRAINING}' --finetune_args '{SHORT_TRAINING}' "
    f"--superb_args '{SHORT_TRAINING}' "
    "--benchmark_args '--max_utts 2 --repeats 1 --warmup 1'\""
)
MINI = "egs/mini_synth/asr1"
# The LM at the tiny size: two training steps, one weight, beam 2, the distilled students on train only.
LM_TINY = (
    "--finetune_sets train --finetune_models distilled --lm_weights 0.5 --lm_beam_size 2 "
    "--lm_args '--max_epoch 1 --num_iters_per_epoch 2'"
)

PLANS: Dict[Tuple[str, str], Plan] = {
    # README: the two commands, then the recipe's own usage.
    (".", "egs/mini_synth/asr1/run.sh"): Plan("mini", append=MINI_TINY),
    (".", "tools/run_tests.sh --all"): Plan(
        "repo", append="--collect-only -q", why="it cannot run itself inside a test: it installs and collects"
    ),
    (MINI, "./run.sh --help"): Plan("mini"),
    (MINI, "./run.sh --stage 5 --stop_stage 5"): Plan("mini", append=MINI_TINY),
    (MINI, "./run.sh --teacher_format fairseq --teacher_path /path/to/hubert_base_ls960.pt"): Plan(
        "mini_user_teacher",
        append=MINI_TINY
        + " --distill_configs conf/distill/deep_thin_reg_kl.yaml --distill_frontends wav_cnn --finetune_sets train"
        + " --stop_stage 9",
        subs=(("/path/to/hubert_base_ls960.pt", "{fairseq_teacher}"),),
        why="a fairseq checkpoint of the released mini teacher stands for HuBERT Base; one student, fine-tuned on "
        "train, through scoring and RESULTS.md (the other students and stage 10 run as for the released teacher)",
    ),
    (MINI, "python -m espnet_distill.bin.transcribe --model pretrained/asr_mini_fbank --int8 true rec.wav"): Plan(
        "mini"
    ),
    (
        MINI,
        "python -m espnet_distill.bin.export_onnx exp/asr_deep_thin_reg_kl_fbank_train exp/deploy/fbank "
        "--data_dir data/test --calibration_dir data/train",
    ): Plan("mini"),
    (MINI, "python -m espnet_distill.bin.transcribe --model exp/deploy/fbank --int8 true talk.flac meeting.wav"): Plan(
        "mini"
    ),
    (MINI, "python -m espnet_distill.bin.pack_model exp/asr_deep_thin_reg_kl_train model.zip"): Plan("mini"),
    (MINI, "python -m espnet_distill.bin.export_hf exp/asr_deep_thin_reg_kl_train hf_model/"): Plan("mini"),
    # The mini recipe's README.
    (MINI, "./run.sh"): Plan("mini", append=MINI_TINY),
    (MINI, "./run.sh --stage 2 --stop_stage 2"): Plan("mini", append=MINI_TINY),
    (MINI, './run.sh --stop_stage 2 --nj 8 --local_data_opts "--size tiny --seed 3"'): Plan("mini_seed3"),
    (
        MINI,
        "python -m espnet_distill.bin.asr_train --config conf/finetune/ctc.yaml --frontend wav_cnn "
        "--init_student exp/distill_deep_thin_reg_kl --init_student_weights true "
        "--token_list data/token_list/char/tokens.txt --token_type char "
        "--train_data_path_and_name_and_type data/train/wav.scp,speech,sound "
        "--train_data_path_and_name_and_type data/train/text,text,text "
        "--train_shape_file exp/distill_stats/train/speech_shape "
        "--valid_data_path_and_name_and_type data/dev/wav.scp,speech,sound "
        "--valid_data_path_and_name_and_type data/dev/text,text,text "
        "--valid_shape_file exp/distill_stats/dev/speech_shape --output_dir exp/asr_by_hand",
    ): Plan("mini", append=SHORT_TRAINING),
    (MINI, "local/run_study.sh"): Plan(
        "mini_study",
        append=STUDY_TINY,
        why="one grid config (with both front-ends: the main run's students) and one seed at the tiny size; no "
        "pruned student (its stages are tested in test_mini_synth_recipe)",
    ),
    (MINI, "local/run_study.sh --seed_jobs 2"): Plan("mini_study", append=STUDY_TINY),
    (MINI, "local/run_study.sh --size small"): Plan(
        "mini_study", append=STUDY_TINY, why="the tiny size stands for small (synthesizing it takes minutes)"
    ),
    (MINI, 'local/run_study.sh --seeds "" --run_args "--nj 2"'): Plan(
        "mini_study",
        append=STUDY_TINY.replace("--seeds 2 ", ""),
        subs=(('--run_args "--nj 2"', ""),),
        why="its --run_args joins the tiny size's",
    ),
    # docs/
    (
        MINI,
        "python -m espnet_distill.bin.teacher_codebook --teacher_yaml exp/teacher/teacher.yaml "
        "--wav_scp data/train/wav.scp --layer 3 --num_codewords 100 --out exp/teacher/codebook.npz",
    ): Plan("mini"),
    (
        MINI,
        "python -m espnet_distill.bin.espnet_asr_inference --asr_train_config "
        "exp/asr_deep_thin_reg_kl_train/config.yaml --asr_model_file "
        "exp/asr_deep_thin_reg_kl_train/valid.cer_ctc.ave.pth --ctc_weight 1.0 --lm_weight 0 --beam_size 4 "
        "--data_path_and_name_and_type data/test/wav.scp,speech,sound "
        "--output_dir exp/asr_deep_thin_reg_kl_train/espnet_decode",
    ): Plan("mini"),
    (MINI, "python -m espnet_distill.bin.pack_model exp/asr_deep_thin_reg_kl_train packed/deep_thin_reg_kl.zip"): Plan(
        "mini"
    ),
    (MINI, "python -m espnet_distill.bin.export_hf exp/distill_deep_thin_reg_kl hf/deep_thin_reg_kl"): Plan("mini"),
    (MINI, "python -m espnet_distill.bin.export_hf exp/asr_deep_thin_reg_kl_train hf/deep_thin_reg_kl_ctc"): Plan(
        "mini"
    ),
    (
        MINI,
        "python -m espnet_distill.bin.export_onnx exp/asr_deep_thin_reg_kl_fbank_train "
        "exp/deploy/deep_thin_reg_kl_fbank --data_dir data/test --calibration_dir data/train",
    ): Plan("mini"),
    (
        MINI,
        "python -m espnet_distill.bin.transcribe --model exp/deploy/deep_thin_reg_kl_fbank --int8 true "
        "talk.flac meeting.wav",
    ): Plan("mini"),
    (
        MINI,
        "python -m espnet_distill.bin.transcribe --model exp/asr_deep_thin_reg_kl_fbank_train --format json "
        "--beam_size 8 *.wav",
    ): Plan("mini"),
    (
        MINI,
        "python -m espnet_distill.bin.benchmark --data_dir data/test --out_dir exp/benchmark --num_threads 1 "
        "--model paper_hubert_base=conf/benchmark/paper_hubert_base.yaml "
        "--model paper_deep_thin_wav_cnn=conf/benchmark/paper_deep_thin_wav_cnn.yaml "
        "--model paper_deep_thin_fbank=conf/benchmark/paper_deep_thin_fbank.yaml",
    ): Plan("mini", append="--max_utts 2 --repeats 1 --warmup 1"),
    (
        ".",
        "python -m espnet_distill.bin.transcribe --model egs/mini_synth/asr1/pretrained/asr_mini_fbank --int8 true "
        "rec.wav",
    ): Plan("mini"),
    (".", "egs/mini_synth/ssl1/run.sh"): Plan("covered", why="tests/egs/test_mini_synth_ssl1.py::ssl1"),
    # docs/language_model.md
    (MINI, "./run.sh --stage 6 --stop_stage 8 --use_lm true"): Plan(
        "mini",
        append=MINI_TINY + " " + LM_TINY,
        why="the LM for two steps, and the distilled students on train decoded without and with it at one weight "
        "(the study runs stage 8 with the LM for the other models; its tiny run leaves the LM out)",
    ),
    (
        MINI,
        "python -m espnet_distill.bin.transcribe --model exp/asr_deep_thin_reg_kl_fbank_train --beam_size 10 "
        "--lm exp/lm_char --lm_weight 0.4 talk.flac",
    ): Plan("mini"),
    (
        MINI,
        "python -m espnet_distill.bin.espnet_asr_inference --asr_train_config "
        "exp/asr_deep_thin_reg_kl_train/config.yaml --asr_model_file "
        "exp/asr_deep_thin_reg_kl_train/valid.cer_ctc.ave.pth --lm_train_config exp/lm_char/config.yaml "
        "--lm_file exp/lm_char/valid.loss.ave.pth --ctc_weight 1.0 --lm_weight 0.4 --beam_size 10 "
        "--data_path_and_name_and_type data/test/wav.scp,speech,sound "
        "--output_dir exp/asr_deep_thin_reg_kl_train/espnet_decode_lm",
    ): Plan("mini"),
    (
        MINI,
        "python -m espnet_distill.bin.pack_model --lm exp/lm_char exp/asr_deep_thin_reg_kl_train packed/with_lm.zip",
    ): Plan("mini"),
    # docs/teacher_targets.md
    (MINI, "./run.sh --stage 5 --stop_stage 5 --seed 4 --teacher_targets true"): Plan("mini", append=MINI_TINY),
    (
        MINI,
        "python -m espnet_distill.bin.dump_teacher_targets --teacher_yaml exp/teacher/teacher.yaml "
        "--distill_config conf/distill/deep_thin_reg_kl.yaml --distill_config conf/distill/shallow_wide_reg.yaml:fbank "
        "--fbank_stats data/train/feats_stats.npz --data_dir data/ssl --data_dir data/dev "
        "--output_dir dump/targets_example --dtype float16 --topk 8",
    ): Plan("mini"),
    (
        MINI,
        "python -m espnet_distill.benchmark.stored_targets --distill_config conf/distill/deep_thin_reg_kl.yaml "
        "--frontend fbank --teacher_yaml exp/teacher/teacher.yaml --fbank_stats data/train/feats_stats.npz "
        "--data_dir data/ssl --threads 1",
    ): Plan("mini", append="--utts 2 --repeats 1"),
    (
        ".",
        "python -m espnet_distill.benchmark.stored_targets --distill_config "
        "egs/librispeech/asr1/conf/distill/deep_thin_reg_kl.yaml --teacher untrained --utts 4 --seconds 15.625 "
        "--threads 2 --repeats 2",
    ): Plan(
        "covered", why="tests/bin/test_stored_targets_benchmark.py::test_the_paper_scale_command_runs_at_a_tiny_size"
    ),
    # The LibriSpeech recipe (the tests' miniature LibriSpeech tree).
    ("egs/librispeech/asr1", "./run.sh --stop_stage 2"): Plan(
        "covered", why="tests/egs/test_librispeech_recipe.py::recipe"
    ),
    ("egs/librispeech/asr1", "./run.sh"): Plan(
        "covered", why="tests/egs/test_librispeech_recipe.py::test_gpu_commands_without_a_gpu_stop_before_any_work"
    ),
    ("egs/librispeech/asr1", "./run.sh --stage 5 --ngpu 4"): Plan(
        "covered", why="tests/egs/test_librispeech_recipe.py::test_gpu_commands_without_a_gpu_stop_before_any_work"
    ),
    ("egs/librispeech/asr1", "./run.sh --distill_configs all"): Plan(
        "covered", why="tests/egs/test_librispeech_recipe.py::test_gpu_commands_without_a_gpu_stop_before_any_work"
    ),
    ("egs/librispeech/asr1", "./run.sh --stage 5 --distill_configs conf/distill/pruned_dphubert.yaml"): Plan(
        "covered",
        why="tests/egs/test_librispeech_recipe.py::test_dphubert_prunes_then_distills_again_on_the_miniature_tree",
    ),
}


def plans_by_where(where: str) -> List[Tuple[DocCommand, Plan]]:
    """The documented commands a scenario runs, in document order, each once."""
    seen, out = set(), []
    for command in documented_commands():
        plan = PLANS.get(command.key)
        if plan is not None and plan.where == where and command.key not in seen:
            seen.add(command.key)
            out.append((command, plan))
    return out


def covered_test_words(plan: Plan) -> Tuple[Path, str]:
    file, _, name = plan.why.partition("::")
    return REPO_ROOT / file, re.sub(r"\W", "", name)
