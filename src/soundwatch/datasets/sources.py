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
            md5: dict[str, tuple[str, int]] | None = None,
            replaced: tuple[str, ...] = ()) -> tuple[Archive, ...]:
    """One archive per machine type; ``{r2}`` in ``pattern`` is ``_r2`` for ``replaced`` ones."""
    out = []
    for m in machines:
        file = pattern.format(m=m, r2="_r2" if m in replaced else "")
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


_KINDS = {
    "dev": ("development set", "dev_data"),
    "add": ("additional training set", "eval_data"),
    "eval": ("evaluation set (test clips)", "eval_data"),
}
"""A DCASE record's kind: its description and the baseline repository's folder."""


def _dcase(year: int, kind: str, record: str, archives: tuple[Archive, ...], note: str = "",
           checksums: str = _NO_MD5) -> DatasetSource:
    """A DCASE Task 2 record (``kind``: ``dev``, ``add`` or ``eval``) on Zenodo."""
    what, folder = _KINDS[kind]
    return DatasetSource(f"dcase{year}-{kind}",
                         f"DCASE {year} Task 2 {what}" + (f" ({note})" if note else ""),
                         f"{_ZENODO}/{record}", f"dcase{year}t2/{folder}/raw", archives,
                         checksums)


def _truth(year: int, repo: str) -> DatasetSource:
    """A year's evaluation ground truth: the official evaluator repository."""
    return DatasetSource(f"dcase{year}-truth",
                         f"DCASE {year} Task 2 evaluation ground truth (official evaluator)",
                         f"https://github.com/{repo}", f"dcase{year}t2/ground_truth",
                         _github_archive(repo), "none (a GitHub branch archive): zip CRCs checked")


_MILA = "MD5 + size (datasets-mila mirror of the record)"

_LIST = [
    _dcase(2020, "dev", "3678171",
           _zenodo("3678171", "dev_data_{m}.zip", _M2020, _MD5_2020), checksums=_MILA),
    _dcase(2020, "add", "3727685",
           _zenodo("3727685", "eval_data_train_{m}.zip", _M2020, _MD5_2020), checksums=_MILA),
    _dcase(2020, "eval", "3841772", _zenodo("3841772", "eval_data_test_{m}.zip", _M2020)),
    _truth(2020, "y-kawagu/dcase2020_task2_evaluator"),
    _dcase(2021, "dev", "4562016", _zenodo("4562016", "dev_data_{m}.zip", _M2021)),
    _dcase(2021, "add", "4660992", _zenodo("4660992", "eval_data_{m}_train.zip", _M2021)),
    _dcase(2021, "eval", "4884786", _zenodo("4884786", "eval_data_{m}_test.zip", _M2021)),
    _truth(2021, "y-kawagu/dcase2021_task2_evaluator"),
    _dcase(2022, "dev", "6355122", _zenodo("6355122", "dev_{m}.zip", _M2022_DEV)),
    _dcase(2022, "add", "6462969", _zenodo("6462969", "eval_data_{m}_train.zip", _M2022_DEV)),
    _dcase(2022, "eval", "6586456", _zenodo("6586456", "eval_data_{m}_test.zip", _M2022_DEV)),
    _dcase(2023, "dev", "7882613", _zenodo("7882613", "dev_{m}.zip", _M2022_DEV)),
    _dcase(2023, "add", "7830345", _zenodo("7830345", "eval_data_{m}_train.zip", _M2023_EVAL)),
    _dcase(2023, "eval", "7860847", _zenodo("7860847", "eval_data_{m}_test.zip", _M2023_EVAL)),
    _truth(2023, "nttcslab/dcase2023_task2_evaluator"),
    _dcase(2024, "dev", "10902294", _zenodo("10902294", "dev_{m}.zip", _M2022_DEV)),
    _dcase(2024, "add", "11259435",
           _zenodo("11259435", "eval_data_{m}_train{r2}.zip", _M2024_EVAL,
                   replaced=("3DPrinter", "RoboticArm")), "r2 files where replaced"),
    _dcase(2024, "eval", "11363076",
           _zenodo("11363076", "eval_data_{m}_test.zip", _M2024_EVAL)),
    _truth(2024, "nttcslab/dcase2024_task2_evaluator"),
    _dcase(2025, "dev", "15097779", _zenodo("15097779", "dev_{m}.zip", _M2022_DEV)),
    _dcase(2025, "add", "15392814",
           _zenodo("15392814", "eval_data_{m}_train.zip", _M2025_EVAL),
           "with supplemental clips"),
    _dcase(2025, "eval", "15519362",
           _zenodo("15519362", "eval_data_{m}_test.zip", _M2025_EVAL)),
    _dcase(2026, "dev", "19336329",
           _zenodo("19336329", "dev_{m}{r2}.zip", _M2026_DEV, replaced=("ToyCar",)),
           "two channels: near, far"),
    _dcase(2026, "add", "20151556",
           _zenodo("20151556", "eval_data_{m}_train.zip", _M2026_EVAL), "two channels"),
    _dcase(2026, "eval", "20437238",
           _zenodo("20437238", "eval_data_{m}_test.zip", _M2026_EVAL), "two channels"),
    DatasetSource(
        "mimii", "MIMII (public 1.0): fan, pump, slider, valve at -6, 0 and 6 dB SNR",
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
