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
"""

import argparse
import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, List, Optional

import yaml

from espnet_distill.espnet_interop import espnet_config
from espnet_distill.utils.checkpoint import preferred_model_file
from espnet_distill.utils.cli import run
from espnet_distill.utils.log import setup_logging


class PackError(ValueError):
    """The exp dir cannot be packed; the message names the file."""


@contextlib.contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    # ESPnet's pack names archive members by their path relative to the working directory.
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _find_bpemodel(name: str, exp_dir: Path, given: Optional[Path]) -> Path:
    if given is not None:
        candidates = [given]
    else:
        # As recorded (relative to the recipe dir the training ran in), from here or from that recipe dir.
        candidates = [Path(name), *(parent / name for parent in exp_dir.resolve().parents)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise PackError(f"{exp_dir / 'config.yaml'}: its bpemodel {name} is not found; give it with --bpemodel")


def pack_model(exp_dir: Path, out: Path, checkpoint: Optional[str] = None, bpemodel: Optional[Path] = None) -> Path:
    """Write ``out`` (a .zip or .tar.gz) from a fine-tuning exp dir; returns ``out``."""
    from espnet2.main_funcs.pack_funcs import pack

    config_file = exp_dir / "config.yaml"
    try:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise PackError(f"{config_file}: cannot read the training config: {e}") from e
    if not isinstance(config, dict) or not isinstance(config.get("token_list"), list):
        raise PackError(f"{config_file}: not the config of a fine-tuning run (no token list in it)")
    if checkpoint is None:
        try:
            checkpoint = preferred_model_file(exp_dir).name
        except FileNotFoundError as e:
            raise PackError(str(e)) from e
    elif not (exp_dir / checkpoint).is_file():
        raise PackError(f"{exp_dir / checkpoint}: no such model file")
    config = espnet_config(config)
    member = Path("exp") / exp_dir.resolve().name
    with tempfile.TemporaryDirectory(prefix=".pack.", dir=out.parent if out.parent.exists() else None) as tmp:
        stage = Path(tmp)
        (stage / member).mkdir(parents=True)
        shutil.copyfile(exp_dir / checkpoint, stage / member / checkpoint)
        (stage / member / "tokens.txt").write_text("\n".join(config["token_list"]) + "\n", encoding="utf-8")
        options: List[str] = [str(member / "tokens.txt")]
        if config.get("bpemodel"):
            source = _find_bpemodel(str(config["bpemodel"]), exp_dir, bpemodel)
            shutil.copyfile(source, stage / member / "bpe.model")
            config["bpemodel"] = str(member / "bpe.model")  # unpack rewrites it to where it extracts
            options.append(config["bpemodel"])
        config["output_dir"] = str(member)
        with (stage / member / "config.yaml").open("w", encoding="utf-8") as f:
            yaml.safe_dump(config, f, sort_keys=False)
        archive = stage / ("packed" + "".join(out.suffixes[-2:] if out.name.endswith(".tar.gz") else out.suffixes[-1:]))
        with _working_dir(stage):
            pack(
                files={"asr_model_file": str(member / checkpoint)},
                yaml_files={"asr_train_config": str(member / "config.yaml")},
                outpath=archive.name,
                option=options,
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(archive), out.with_name(f".{out.name}.tmp"))
        os.replace(out.with_name(f".{out.name}.tmp"), out)
    logging.info("packed %s (%s) into %s", exp_dir, checkpoint, out)
    return out


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dir", type=Path, help="a fine-tuning exp dir (config.yaml and its model files)")
    parser.add_argument("out", type=Path, help="the archive to write: .zip, .tar.gz or .tgz")
    parser.add_argument("--checkpoint", default=None, help="model file in exp_dir (default: the averaged best)")
    parser.add_argument(
        "--bpemodel", type=Path, default=None, help="the sentencepiece model, when config.yaml's path does not resolve"
    )
    args = parser.parse_args(argv)
    setup_logging()
    if not args.out.name.endswith((".zip", ".tar.gz", ".tgz")):
        parser.error(f"{args.out}: the archive name must end in .zip, .tar.gz or .tgz")
    try:
        pack_model(args.exp_dir, args.out, args.checkpoint, args.bpemodel)
    except PackError as e:
        logging.error("%s", e)
        raise SystemExit(1) from e


if __name__ == "__main__":
    run(main)
