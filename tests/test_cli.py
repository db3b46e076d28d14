"""The `verzuimhub` command's small subcommands, and the README staying true to them."""

from __future__ import annotations

from pathlib import Path

import pytest
from jose import jwt

from verzuimhub.cli import main, run_bench, settings_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_token_mints_a_school_token_with_its_brins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "token",
                "--role",
                "school",
                "--brin",
                "12AB",
                "--brin",
                "34CD",
                "--data-dir",
                str(tmp_path),
                "--ttl",
                "60",
            ]
        )
    assert exit_.value.code == 0
    claims = jwt.get_unverified_claims(capsys.readouterr().out.strip())
    assert claims["brin"] == ["12AB", "34CD"]
    assert claims["exp"] - claims["iat"] == 60
    assert "registraties:schrijven" in claims["scope"].split()


def test_token_refuses_a_role_without_its_organisation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["token", "--role", "gemeente", "--data-dir", str(tmp_path)])
    assert exit_.value.code == 2
    assert "needs its organisation" in capsys.readouterr().err


def test_readme_settings_table_matches_the_code() -> None:
    readme = (ROOT / "README.md").read_text()
    assert settings_markdown() in readme, "run `verzuimhub settings --markdown` into README.md"


def test_refdata_load_validates_installs_and_check_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = ROOT / "shared/src/verzuimhub_shared/data"
    target = tmp_path / "refdata"
    for kind, name in [
        ("gemeenten", "gemeenten"),
        ("swv-gemeenten", "swv_gemeenten"),
        ("vestigingen", "vestigingen"),
        ("swv-postcodes", "swv_postcodes"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(
                [
                    "refdata",
                    "load",
                    kind,
                    str(sample / "refdata" / f"{name}.csv"),
                    "--dir",
                    str(target),
                ]
            )
        assert exit_.value.code == 0
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "refdata",
                "load",
                "schoolvakanties",
                str(sample / "holidays/schoolvakanties-2025-2026.json"),
                "--dir",
                str(target),
            ]
        )
    assert (target / "schoolvakanties/schoolvakanties-2025-2026.json").is_file()
    with pytest.raises(SystemExit) as exit_:
        main(["refdata", "check", "--dir", str(target)])
    assert exit_.value.code == 0
    assert "8 gemeenten" in capsys.readouterr().out

    bad = tmp_path / "bad.csv"
    bad.write_text("x;y\n1;2\n")
    with pytest.raises(SystemExit) as exit_:
        main(["refdata", "load", "gemeenten", str(bad), "--dir", str(target)])
    assert exit_.value.code == 2
    assert "kolom ontbreekt" in capsys.readouterr().err
    assert (target / "gemeenten.csv").read_text() != bad.read_text()  # nothing replaced


def test_bench_passes_every_argument_to_the_benchmark(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--help"])
    assert exit_.value.code == 0
    assert "--repeat" in capfd.readouterr().out  # the benchmark's own help, not the CLI's
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--only", "batch,warp"])
    assert exit_.value.code == 2
    assert "unknown phase(s): warp" in capfd.readouterr().err


def test_bench_outside_a_source_checkout_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_bench([], script=tmp_path / "bench" / "hub_bench.py") == 2
    assert "runs from a source checkout" in capsys.readouterr().err
