"""Where the public data sets come from: DCASE 2020-2026 Task 2 and MIMII archives.

Every URL and file name is the one the official records publish (Zenodo records, as linked
by the task pages and the baseline repository nttcslab/dcase2023_task2_baseline_ae; the
ground truth from the official evaluator repositories). A checksum is given where a
published one was found (see docs/datasets.md for each source); elsewhere ``md5`` is
``None`` and the download verifies what it can: the size the server announces, and every
member's CRC-32 when the archive is unpacked.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SOURCES", "Archive", "DatasetSource", "dataset_names"]


@dataclass(frozen=True)
class Archive:
    """One archive of a data set.

    Attributes:
        url: The official download URL.
        file: The archive's file name.
        machine: Machine type it holds (``None``: not per machine, e.g. ground truth).
        md5: Published MD5 checksum, or ``None`` where none is published.
        size: Published size in bytes, or ``None``.
        subdir: Folder under the data set's folder to unpack into (``None``: the folder
            itself); MIMII's archives of one machine at three SNRs hold the same paths.
    """

    url: str
    file: str
    machine: str | None = None
    md5: str | None = None
    size: int | None = None
    subdir: str | None = None


@dataclass(frozen=True)
class DatasetSource:
    """A downloadable data set: its archives and the folder they unpack into.

    Attributes:
        name: What ``soundwatch download NAME`` takes.
        description: One line.
        record: The record (landing page) the archives come from.
        folder: Folder under ``--dir`` the archives unpack into (the layout soundwatch
            reads; for DCASE the baseline repository's ``dcaseYYYYt2/{dev,eval}_data/raw``).
        archives: The archives.
        checksums: Where the checksums come from, or why there are none.
    """

    name: str
    description: str
    record: str
    folder: str
    archives: tuple[Archive, ...]
    checksums: str


_ZENODO = "https://zenodo.org/records"
_NO_MD5 = "none found published: size + zip CRCs checked"
"""The Zenodo record pages list an MD5 per file; they were not available to this project."""


def _zenodo(record: str, pattern: str, machines: tuple[str, ...],
            md5: dict[str, tuple[str, int]] | None = None) -> tuple[Archive, ...]:
    out = []
    for m in machines:
        file = pattern.format(m=m)
        known = (md5 or {}).get(file)
        out.append(Archive(f"{_ZENODO}/{record}/files/{file}", file, m,
                           known[0] if known else None, known[1] if known else None))
    return tuple(out)


def _github_archive(repo: str) -> tuple[Archive, ...]:
    """The repository's default branch as a zip archive (GitHub's ``archive/HEAD.zip``)."""
    file = f"{repo.split('/')[1]}-HEAD.zip"
    return (Archive(f"https://github.com/{repo}/archive/HEAD.zip", file),)


# DCASE 2020: MD5s and sizes as the datasets-mila mirror of these Zenodo records lists them
# (its md5sums file and git-annex keys); the evaluation test archives have none there.
_MD5_2020 = {
    "dev_data_fan.zip": ("649bdfc06263ae7a838963f43b6641e6", 1354774772),
    "dev_data_pump.zip": ("90e7091ef722b7238a7f1009365779cd", 1031279015),
    "dev_data_slider.zip": ("da24a757719f0d94d5aa2d646bbfdc86", 1002998966),
    "dev_data_ToyCar.zip": ("4dec75ca8d9f666aa9e4c1894a740501", 1816443231),
    "dev_data_ToyConveyor.zip": ("03b6aa1bfd09a39d53af0ba39f71fa91", 1868564070),
    "dev_data_valve.zip": ("34d2672f55bb041589ef79c10dc89934", 1013925627),
    "eval_data_train_fan.zip": ("567798854130c8019df8b664c095ed1e", 697147242),
    "eval_data_train_pump.zip": ("4e33ae9c0db5cc88437675f5e317caee", 590897096),
    "eval_data_train_slider.zip": ("f84f186f4295fc23754abcdd1b0580a7", 577515541),
    "eval_data_train_ToyCar.zip": ("a5d4ccd498af70b04dd74b644b820006", 861354584),
    "eval_data_train_ToyConveyor.zip": ("0e808ac0b761e9fb13d5e0c65caff00d", 887026878),
    "eval_data_train_valve.zip": ("057cdd560caffb8305449541afd28c6d", 615645426),
}

# MIMII: MD5s as the Zenodo record 3384388 lists them (copied in datasets-mila/datasets--mimii).
_MD5_MIMII = {
    "-6_dB_fan.zip": "f02ae808a58d84b6815b7ec38ff30879",
    "-6_dB_pump.zip": "d20b783a0ff9c93d58f452f98c37b112",
    "-6_dB_slider.zip": "49913eda7d37f182cbf8ed5c984140e0",
    "-6_dB_valve.zip": "fdfaf185fea61b21e11952a070a4ada7",
    "0_dB_fan.zip": "6354d1cc2165c52168f9ef1bcd9c7c52",
    "0_dB_pump.zip": "488748295c3f60b25de07b58fe75b049",
    "0_dB_slider.zip": "4d674c21474f0646ecd75546db6c0c4e",
    "0_dB_valve.zip": "178478eb0d11c79080a35562bfdeee71",
    "6_dB_fan.zip": "0890f7d3c2fd8448634e69ff1d66dd47",
    "6_dB_pump.zip": "a09ba6060c10fc09cd4c8770213b0b9f",
    "6_dB_slider.zip": "838c2b3441858359c4704ef13a1b27ff",
    "6_dB_valve.zip": "fe5fb7c337cd701b1d31dc641e621892",
}

_M2020 = ("ToyCar", "ToyConveyor", "fan", "pump", "slider", "valve")
_M2021 = ("fan", "gearbox", "pump", "slider", "ToyCar", "ToyTrain", "valve")
_M2022_DEV = ("bearing", "fan", "gearbox", "slider", "ToyCar", "ToyTrain", "valve")
_M2023_EVAL = ("bandsaw", "grinder", "shaker", "ToyDrone", "ToyNscale", "ToyTank", "Vacuum")
_M2024_EVAL = ("3DPrinter", "AirCompressor", "BrushlessMotor", "HairDryer", "HoveringDrone",
               "RoboticArm", "Scanner", "ToothBrush", "ToyCircuit")
_M2025_EVAL = ("AutoTrash", "BandSealer", "CoffeeGrinder", "HomeCamera", "Polisher",
               "ScrewFeeder", "ToyPet", "ToyRCCar")
_M2026_DEV = ("ToyCar", "ToyCarEmu", "bearingEmu", "fan", "gearboxEmu", "sliderEmu", "valveEmu")
_M2026_EVAL = ("ToyDrone", "ToothBrush", "SewingMachine", "BlowerDustCollector", "Sander")


def _src(name: str, description: str, record: str, folder: str,
         archives: tuple[Archive, ...], checksums: str = _NO_MD5) -> DatasetSource:
    return DatasetSource(name, description, record, folder, archives, checksums)


_LIST = [
    _src("dcase2020-dev", "DCASE 2020 Task 2 development set", f"{_ZENODO}/3678171",
         "dcase2020t2/dev_data/raw", _zenodo("3678171", "dev_data_{m}.zip", _M2020, _MD5_2020),
         "MD5 + size (datasets-mila mirror of the record)"),
    _src("dcase2020-add", "DCASE 2020 Task 2 additional training set", f"{_ZENODO}/3727685",
         "dcase2020t2/eval_data/raw",
         _zenodo("3727685", "eval_data_train_{m}.zip", _M2020, _MD5_2020),
         "MD5 + size (datasets-mila mirror of the record)"),
    _src("dcase2020-eval", "DCASE 2020 Task 2 evaluation set (test clips)", f"{_ZENODO}/3841772",
         "dcase2020t2/eval_data/raw", _zenodo("3841772", "eval_data_test_{m}.zip", _M2020)),
    _src("dcase2020-truth", "DCASE 2020 Task 2 evaluation ground truth (official evaluator)",
         "https://github.com/y-kawagu/dcase2020_task2_evaluator",
         "dcase2020t2/ground_truth", _github_archive("y-kawagu/dcase2020_task2_evaluator"),
         "none (a GitHub branch archive): zip CRCs checked"),
    _src("dcase2021-dev", "DCASE 2021 Task 2 development set", f"{_ZENODO}/4562016",
         "dcase2021t2/dev_data/raw", _zenodo("4562016", "dev_data_{m}.zip", _M2021)),
    _src("dcase2021-add", "DCASE 2021 Task 2 additional training set", f"{_ZENODO}/4660992",
         "dcase2021t2/eval_data/raw", _zenodo("4660992", "eval_data_{m}_train.zip", _M2021)),
    _src("dcase2021-eval", "DCASE 2021 Task 2 evaluation set (test clips)", f"{_ZENODO}/4884786",
         "dcase2021t2/eval_data/raw", _zenodo("4884786", "eval_data_{m}_test.zip", _M2021)),
    _src("dcase2021-truth", "DCASE 2021 Task 2 evaluation ground truth (official evaluator)",
         "https://github.com/y-kawagu/dcase2021_task2_evaluator",
         "dcase2021t2/ground_truth", _github_archive("y-kawagu/dcase2021_task2_evaluator"),
         "none (a GitHub branch archive): zip CRCs checked"),
    _src("dcase2022-dev", "DCASE 2022 Task 2 development set", f"{_ZENODO}/6355122",
         "dcase2022t2/dev_data/raw", _zenodo("6355122", "dev_{m}.zip", _M2022_DEV)),
    _src("dcase2022-add", "DCASE 2022 Task 2 additional training set", f"{_ZENODO}/6462969",
         "dcase2022t2/eval_data/raw", _zenodo("6462969", "eval_data_{m}_train.zip", _M2022_DEV)),
    _src("dcase2022-eval", "DCASE 2022 Task 2 evaluation set (test clips)", f"{_ZENODO}/6586456",
         "dcase2022t2/eval_data/raw", _zenodo("6586456", "eval_data_{m}_test.zip", _M2022_DEV)),
    _src("dcase2023-dev", "DCASE 2023 Task 2 development set", f"{_ZENODO}/7882613",
         "dcase2023t2/dev_data/raw", _zenodo("7882613", "dev_{m}.zip", _M2022_DEV)),
    _src("dcase2023-add", "DCASE 2023 Task 2 additional training set", f"{_ZENODO}/7830345",
         "dcase2023t2/eval_data/raw", _zenodo("7830345", "eval_data_{m}_train.zip", _M2023_EVAL)),
    _src("dcase2023-eval", "DCASE 2023 Task 2 evaluation set (test clips)", f"{_ZENODO}/7860847",
         "dcase2023t2/eval_data/raw", _zenodo("7860847", "eval_data_{m}_test.zip", _M2023_EVAL)),
    _src("dcase2023-truth", "DCASE 2023 Task 2 evaluation ground truth (official evaluator)",
         "https://github.com/nttcslab/dcase2023_task2_evaluator",
         "dcase2023t2/ground_truth", _github_archive("nttcslab/dcase2023_task2_evaluator"),
         "none (a GitHub branch archive): zip CRCs checked"),
    _src("dcase2024-dev", "DCASE 2024 Task 2 development set", f"{_ZENODO}/10902294",
         "dcase2024t2/dev_data/raw", _zenodo("10902294", "dev_{m}.zip", _M2022_DEV)),
    _src("dcase2024-add", "DCASE 2024 Task 2 additional training set (r2 files where replaced)",
         f"{_ZENODO}/11259435", "dcase2024t2/eval_data/raw",
         tuple(
             Archive(f"{_ZENODO}/11259435/files/{f}", f, m)
             for m in _M2024_EVAL
             for f in [f"eval_data_{m}_train"
                       f"{'_r2' if m in ('3DPrinter', 'RoboticArm') else ''}.zip"]
         )),
    _src("dcase2024-eval", "DCASE 2024 Task 2 evaluation set (test clips)", f"{_ZENODO}/11363076",
         "dcase2024t2/eval_data/raw", _zenodo("11363076", "eval_data_{m}_test.zip", _M2024_EVAL)),
    _src("dcase2024-truth", "DCASE 2024 Task 2 evaluation ground truth (official evaluator)",
         "https://github.com/nttcslab/dcase2024_task2_evaluator",
         "dcase2024t2/ground_truth", _github_archive("nttcslab/dcase2024_task2_evaluator"),
         "none (a GitHub branch archive): zip CRCs checked"),
    _src("dcase2025-dev", "DCASE 2025 Task 2 development set", f"{_ZENODO}/15097779",
         "dcase2025t2/dev_data/raw", _zenodo("15097779", "dev_{m}.zip", _M2022_DEV)),
    _src("dcase2025-add", "DCASE 2025 Task 2 additional training set (with supplemental clips)",
         f"{_ZENODO}/15392814", "dcase2025t2/eval_data/raw",
         _zenodo("15392814", "eval_data_{m}_train.zip", _M2025_EVAL)),
    _src("dcase2025-eval", "DCASE 2025 Task 2 evaluation set (test clips)", f"{_ZENODO}/15519362",
         "dcase2025t2/eval_data/raw", _zenodo("15519362", "eval_data_{m}_test.zip", _M2025_EVAL)),
    _src("dcase2026-dev", "DCASE 2026 Task 2 development set (two channels: near, far)",
         f"{_ZENODO}/19336329", "dcase2026t2/dev_data/raw",
         tuple(Archive(f"{_ZENODO}/19336329/files/{f}", f, m)
               for m in _M2026_DEV
               for f in [f"dev_{m}{'_r2' if m == 'ToyCar' else ''}.zip"])),
    _src("dcase2026-add", "DCASE 2026 Task 2 additional training set (two channels)",
         f"{_ZENODO}/20151556", "dcase2026t2/eval_data/raw",
         _zenodo("20151556", "eval_data_{m}_train.zip", _M2026_EVAL)),
    _src("dcase2026-eval", "DCASE 2026 Task 2 evaluation set (test clips, two channels)",
         f"{_ZENODO}/20437238", "dcase2026t2/eval_data/raw",
         _zenodo("20437238", "eval_data_{m}_test.zip", _M2026_EVAL)),
    _src("mimii", "MIMII (public 1.0): fan, pump, slider, valve at -6, 0 and 6 dB SNR",
         f"{_ZENODO}/3384388", "mimii",
         tuple(Archive(f"{_ZENODO}/3384388/files/{snr}_dB_{m}.zip", f"{snr}_dB_{m}.zip", m,
                       _MD5_MIMII[f"{snr}_dB_{m}.zip"], subdir=f"{snr}_dB_{m}")
               for snr in ("-6", "0", "6") for m in ("fan", "pump", "slider", "valve")),
         "MD5 (the Zenodo record)"),
]

SOURCES: dict[str, DatasetSource] = {s.name: s for s in _LIST}
"""Every data set ``soundwatch download`` knows, by name."""


def dataset_names() -> list[str]:
    """The names ``soundwatch download`` accepts."""
    return list(SOURCES)
