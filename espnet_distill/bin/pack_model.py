"""Pack a fine-tuned model in ESPnet's packed-model layout (a zip ESPnet's ``unpack`` reads).

The archive holds ``meta.yaml`` (ESPnet's index: ``asr_train_config``,
``asr_model_file``), ``exp/<name>/config.yaml`` in ESPnet's form (the whole
structure and token list, see :mod:`espnet_distill.espnet_interop`), the model
file, ``exp/<name>/tokens.txt`` and, for BPE models, the sentencepiece model,
which the config names by its place in the archive.  It is written with
ESPnet's own ``pack``, so ESPnet's ``unpack`` (what ``espnet_model_zoo`` runs
for ``Speech2Text.from_pretrained``) gives the arguments of ``Speech2Text``:

    python -m espnet_distill.bin.pack_model exp/asr_deep_thin_reg_kl_train packed/deep_thin_reg_kl.zip

    import espnet_distill  # ESPnet's ASR task then knows the student components
    from espnet2.bin.asr_inference import Speech2Text
    from espnet2.main_funcs.pack_funcs import unpack
    speech2text = Speech2Text(**unpack("packed/deep_thin_reg_kl.zip", "unpacked"), ctc_weight=1.0, lm_weight=0.0)

With ``--lm exp/lm_char`` the language model goes in too (``lm_train_config``
and ``lm_file`` in ``meta.yaml``, as ESPnet packs one), after it has loaded
safely and its token list has been found to be the model's; ``unpack`` then
gives ``Speech2Text`` both, to decode with ``lm_weight`` > 0.

Before anything is written, the model is built from the config and the model
file loaded into it as every loader of this project does (safely, strictly,
its CTC size against the token list): what would not unpack into a working
model is refused with one line naming the file (and the key).
"""

import argparse
import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import yaml

from espnet_distill.asr.build import load_ctc_model
from espnet_distill.espnet_interop import espnet_config
from espnet_distill.text.tokens import read_token_list
from espnet_distill.utils.checkpoint import CheckpointError, preferred_model_file
from espnet_distill.utils.cli import check_output_file, run
from espnet_distill.utils.config import ConfigError
from espnet_distill.utils.log import setup_logging

logger = logging.getLogger(__name__)


class PackError(ValueError):
    """The exp dir cannot be packed; the message names the file."""


@contextlib.contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    """Run the block in ``path``, then return to the previous working directory."""
    # ESPnet's pack names archive members by their path relative to the working directory.
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _find_in_recipe(name: str, exp_dir: Path, given: Optional[Path]) -> Optional[Path]:
    """A file the config names (relative to the recipe dir the training ran in): ``given``, or ``name`` from
    here or from a directory above ``exp_dir``; None if none is a file."""
    if given is not None:
        candidates = [given]
    else:
        candidates = [Path(name), *(parent / name for parent in exp_dir.resolve().parents)]
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def _token_list(config: Dict[str, Any], config_file: Path, exp_dir: Path) -> List[str]:
    """The config's token list: the list itself, or read from the file it names."""
    token_list = config.get("token_list")
    if isinstance(token_list, list):
        return token_list
    if not isinstance(token_list, str):
        raise PackError(f"{config_file}: not the config of a fine-tuning run (no token list in it)")
    path = _find_in_recipe(token_list, exp_dir, None)
    if path is None:
        raise PackError(
            f"{config_file}: its token_list {token_list} is not found (from here nor from a directory above {exp_dir})"
        )
    try:
        return read_token_list(path)
    except (OSError, ValueError) as e:
        raise PackError(f"{config_file}: its token_list {path}: {e}") from e


def check_model(config: Dict[str, Any], config_file: Path, model_file: Path) -> None:
    """Build the model of ``config`` and load ``model_file`` into it (safely, strictly), as unpacking will."""
    try:
        load_ctc_model(config, config_file, model_file)
    except (CheckpointError, ConfigError) as e:
        raise PackError(str(e)) from e


def pack_model(
    exp_dir: Path,
    out: Path,
    checkpoint: Optional[str] = None,
    bpemodel: Optional[Path] = None,
    lm: Optional[Path] = None,
) -> Path:
    """Write ``out`` (a .zip or .tar.gz) from a fine-tuning exp dir; returns ``out``.

    Nothing is written unless the model file loads into the model of the config
    (safely and strictly) and every file the config names is found.  With
    ``lm`` (an ``lm_train`` exp dir or model file), the LM goes in too, as
    ESPnet packs one (``lm_train_config``, ``lm_file``), once it has loaded
    safely and its token list is found to be the model's.
    """
    check_output_file(out, "archive")
    config_file = exp_dir / "config.yaml"
    config = _training_config(config_file, exp_dir)
    checkpoint = _model_file_name(exp_dir, checkpoint)
    check_model(config, config_file, exp_dir / checkpoint)
    config = espnet_config(config)
    bpe_source = None
    if config.get("bpemodel"):
        bpe_source = _find_in_recipe(str(config["bpemodel"]), exp_dir, bpemodel)
        if bpe_source is None:
            raise PackError(f"{config_file}: its bpemodel {config['bpemodel']} is not found; give it with --bpemodel")
    lm_files = _checked_lm(lm, config["token_list"], config_file) if lm is not None else None
    member = Path("exp") / exp_dir.resolve().name
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pack.", dir=out.parent) as tmp:
        stage = Path(tmp)
        options = _stage_members(stage, member, exp_dir, checkpoint, config, bpe_source)
        files = {"asr_model_file": str(member / checkpoint)}
        yaml_files = {"asr_train_config": str(member / "config.yaml")}
        if lm_files is not None:
            lm_member = _stage_lm(stage, member, lm_files, config.get("bpemodel"))
            files["lm_file"] = str(lm_member / lm_files[1].name)
            yaml_files["lm_train_config"] = str(lm_member / "config.yaml")
        _pack_staged(stage, files, yaml_files, options, out)
    logger.info("packed %s (%s) into %s", exp_dir, checkpoint, out)
    return out


def _training_config(config_file: Path, exp_dir: Path) -> Dict[str, Any]:
    """The exp dir's training config, with its token list itself (not the file it names)."""
    try:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise PackError(f"{config_file}: cannot read the training config: {e}") from e
    if not isinstance(config, dict):
        raise PackError(f"{config_file}: not the config of a fine-tuning run (no token list in it)")
    config["token_list"] = _token_list(config, config_file, exp_dir)
    return config


def _model_file_name(exp_dir: Path, checkpoint: Optional[str]) -> str:
    """The model file to pack: ``checkpoint`` if it is in ``exp_dir``, else the preferred one there."""
    if checkpoint is None:
        try:
            return preferred_model_file(exp_dir).name
        except FileNotFoundError as e:
            raise PackError(str(e)) from e
    if not (exp_dir / checkpoint).is_file():
        raise PackError(f"{exp_dir / checkpoint}: no such model file")
    return checkpoint


def _stage_members(
    stage: Path, member: Path, exp_dir: Path, checkpoint: str, config: Dict[str, Any], bpe_source: Optional[Path]
) -> List[str]:
    """Write the archive's files under ``stage/member`` (``config`` renamed to them); return the optional ones."""
    (stage / member).mkdir(parents=True)
    shutil.copyfile(exp_dir / checkpoint, stage / member / checkpoint)
    (stage / member / "tokens.txt").write_text("\n".join(config["token_list"]) + "\n", encoding="utf-8")
    options: List[str] = [str(member / "tokens.txt")]
    if bpe_source is not None:
        shutil.copyfile(bpe_source, stage / member / "bpe.model")
        config["bpemodel"] = str(member / "bpe.model")  # unpack rewrites it to where it extracts
        options.append(config["bpemodel"])
    config["output_dir"] = str(member)
    with (stage / member / "config.yaml").open("w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return options


def _checked_lm(lm: Path, token_list: List[str], config_file: Path) -> Tuple[Path, Path]:
    """``(config.yaml, model file)`` of the LM, once it has loaded safely with the ASR model's token list."""
    from espnet_distill.inference.lm import lm_files, load_lm

    try:
        load_lm(lm, token_list, config_file)
        return lm_files(lm)
    except (FileNotFoundError, ValueError) as e:  # CheckpointError and TokenListMismatch are ValueErrors
        raise PackError(str(e)) from e


def _stage_lm(stage: Path, member: Path, lm_files: Tuple[Path, Path], bpemodel: Optional[str]) -> Path:
    """Write the LM's config and model file under ``stage/exp/<LM dir name>``; return that member dir."""
    config_file, model_file = lm_files
    lm_member = Path("exp") / config_file.resolve().parent.name
    if lm_member == member:
        lm_member = Path("exp") / f"{lm_member.name}_lm"
    (stage / lm_member).mkdir(parents=True)
    shutil.copyfile(model_file, stage / lm_member / model_file.name)
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    config["bpemodel"] = bpemodel  # the ASR model's (same token list), already staged
    config["output_dir"] = str(lm_member)
    with (stage / lm_member / "config.yaml").open("w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return lm_member


def _pack_staged(stage: Path, files: Dict[str, str], yaml_files: Dict[str, str], options: List[str], out: Path) -> None:
    """ESPnet's ``pack`` of the staged files, moved into place at ``out`` (whole or not at all)."""
    from espnet2.main_funcs.pack_funcs import pack

    archive = stage / ("packed" + "".join(out.suffixes[-2:] if out.name.endswith(".tar.gz") else out.suffixes[-1:]))
    with _working_dir(stage):
        pack(files=files, yaml_files=yaml_files, outpath=archive.name, option=options)
    partial = out.with_name(f".{out.name}.tmp")
    try:
        shutil.move(str(archive), partial)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dir", type=Path, help="a fine-tuning exp dir (config.yaml and its model files)")
    parser.add_argument("out", type=Path, help="the archive to write: .zip, .tar.gz or .tgz")
    parser.add_argument("--checkpoint", default=None, help="model file in exp_dir (default: the averaged best)")
    parser.add_argument(
        "--bpemodel", type=Path, default=None, help="the sentencepiece model, when config.yaml's path does not resolve"
    )
    parser.add_argument("--lm", type=Path, default=None, help="an lm_train exp dir (or model file) to pack too")
    args = parser.parse_args(argv)
    setup_logging()
    if not args.out.name.endswith((".zip", ".tar.gz", ".tgz")):
        parser.error(f"{args.out}: the archive name must end in .zip, .tar.gz or .tgz")
    try:
        pack_model(args.exp_dir, args.out, args.checkpoint, args.bpemodel, args.lm)
    except PackError as e:
        logger.error("%s", e)
        raise SystemExit(1) from e


if __name__ == "__main__":
    run(main)
