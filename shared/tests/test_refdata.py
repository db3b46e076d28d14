from __future__ import annotations

import dataclasses
from importlib.resources import files
from pathlib import Path

import pytest

from verzuimhub_shared.refdata import (
    SCHOOLS_FILE,
    SWV_POSTCODES_FILE,
    RefData,
    RefDataError,
    Sector,
    SwvKind,
    load_refdata,
    normalise_gemeente_code,
    normalise_pc4,
    normalise_swv_code,
    parse_gemeenten,
    parse_schools,
    parse_sectors,
    parse_swv_gemeenten,
    parse_swv_postcodes,
    sample_refdata,
    swv_kind_for_sector,
)

SAMPLE_DIR = files("verzuimhub_shared") / "data" / "refdata"

GEMEENTEN = "GemeentecodeGM;Gemeentenaam\nGM0001;Een\nGM0002;Twee\nGM0003;Drie\n"
SWV_GEMEENTEN = (
    "SAMENWERKINGSVERBAND;NAAM SAMENWERKINGSVERBAND;GEMEENTENUMMER\n"
    "PO-01-01;Po een;0001\nPO-01-01;Po een;0002\nPO-01-02;Po twee;0003\n"
    "VO-01-01;Vo een;0001\nVO-01-01;Vo een;0002\nVO-01-01;Vo een;0003\n"
)
HEADER = (
    "BRIN NUMMER;VESTIGINGSNUMMER;VESTIGINGSNAAM;POSTCODE;GEMEENTENUMMER;SECTOREN;"
    "SWV PO;SWV VO;VAKANTIEREGIO\n"
)


def build(
    gemeenten: str = GEMEENTEN,
    swv_gemeenten: str = SWV_GEMEENTEN,
    postcodes: str = "SAMENWERKINGSVERBAND;GEMEENTENUMMER;POSTCODE VAN\n",
    schools: str = HEADER,
) -> RefData:
    return RefData.build(
        parse_gemeenten(gemeenten),
        parse_swv_gemeenten(swv_gemeenten),
        parse_swv_postcodes(postcodes),
        parse_schools(schools),
    )


# -- the shipped sample ----------------------------------------------------------------------


def test_sample_region_sizes() -> None:
    refdata = sample_refdata()
    assert len(refdata.gemeenten) == 8
    assert [s.code for s in refdata.all_swvs("po")] == ["PO-99-01", "PO-99-02", "PO-99-03"]
    assert [s.code for s in refdata.all_swvs("vo")] == ["VO-99-01", "VO-99-02"]
    assert len(refdata.schools) == 49


def test_sample_is_cached_and_fictional() -> None:
    assert sample_refdata() is sample_refdata()
    assert all(code.startswith("GM99") for code in sample_refdata().gemeenten)
    assert all(brin.startswith("99") for brin, _ in sample_refdata().schools)
    assert "FICTIONAL" in (SAMPLE_DIR / "README.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("kind", ["po", "vo"])
def test_sample_covers_every_gemeente_once_per_kind(kind: SwvKind) -> None:
    refdata = sample_refdata()
    for code in refdata.gemeenten:
        swv = refdata.swv_for_gemeente(code, kind)
        assert swv is not None
        assert swv.kind == kind
        assert code in swv.gemeenten
        others = [s for s in refdata.all_swvs(kind) if s is not swv and code in s.gemeenten]
        assert others == []


def test_sample_has_schools_of_every_sector_and_both_regions() -> None:
    schools = sample_refdata().schools.values()
    sectors = {sector for school in schools for sector in school.sectors}
    assert sectors == {"po", "sbo", "so", "vso", "vo", "mbo"}
    regions = [school.holiday_region for school in schools]
    assert regions.count("midden") > regions.count("noord") > 0


def test_every_sample_school_has_the_swvs_its_sectors_need() -> None:
    refdata = sample_refdata()
    for school in refdata.schools.values():
        for sector in school.sectors:
            kind = swv_kind_for_sector(sector)
            code = school.swv_for_sector(sector)
            if kind is None:
                assert code is None
            else:
                swv = refdata.swv(code or "")
                assert swv is not None
                assert swv.kind == kind
                assert swv == refdata.swv_for_gemeente(school.gemeente, kind, school.pc4)


# -- lookups ---------------------------------------------------------------------------------


def test_gemeente_lookups() -> None:
    refdata = sample_refdata()
    assert refdata.gemeente_exists("GM9901")
    assert refdata.gemeente_name("GM9901") == "Aldermoer"
    assert not refdata.gemeente_exists("GM0363")
    assert refdata.gemeente_name("GM0363") is None
    assert not refdata.gemeente_exists("gm9901"), "lookups take canonical codes"


def test_swv_record_lists_whole_and_partial_gemeenten() -> None:
    refdata = sample_refdata()
    po1 = refdata.swv("PO-99-01")
    assert po1 is not None
    assert po1.kind == "po"
    assert po1.gemeenten == {"GM9901", "GM9902", "GM9903"}
    assert po1.partial_gemeenten == {"GM9904"}
    assert po1.covers("GM9904")
    assert not po1.covers("GM9905")
    assert refdata.swv("PO-00-00") is None


@pytest.mark.parametrize(
    ("postcode", "expected"),
    [
        (None, "PO-99-02"),
        ("9944", "PO-99-02"),
        ("9945", "PO-99-01"),
        ("9947 AB", "PO-99-01"),
        ("9949ab", "PO-99-01"),
        ("9950", "PO-99-02"),
    ],
)
def test_postcode_exception_splits_a_gemeente(postcode: str | None, expected: str) -> None:
    swv = sample_refdata().swv_for_gemeente("GM9904", "po", postcode)
    assert swv is not None
    assert swv.code == expected


def test_postcode_exception_only_applies_to_its_kind() -> None:
    swv = sample_refdata().swv_for_gemeente("GM9904", "vo", "9946")
    assert swv is not None
    assert swv.code == "VO-99-01"


def test_swv_for_unknown_gemeente_is_none_and_bad_postcode_raises() -> None:
    refdata = sample_refdata()
    assert refdata.swv_for_gemeente("GM0363", "po") is None
    with pytest.raises(ValueError, match="postcode"):
        refdata.swv_for_gemeente("GM9904", "po", "99")


@pytest.mark.parametrize(
    ("sector", "expected"),
    [("po", "PO-99-02"), ("sbo", "PO-99-02"), ("so", "PO-99-02"), ("vso", "VO-99-02")],
)
def test_swv_for_sector(sector: Sector, expected: str) -> None:
    swv = sample_refdata().swv_for_sector("GM9905", sector)
    assert swv is not None
    assert swv.code == expected


def test_mbo_has_no_swv() -> None:
    assert sample_refdata().swv_for_sector("GM9905", "mbo") is None
    mbo = sample_refdata().school("99BS", "00")
    assert mbo is not None
    assert mbo.sectors == {"mbo"}
    assert mbo.swv_po is None
    assert mbo.swv_vo is None


@pytest.mark.parametrize(
    ("sector", "kind"),
    [("po", "po"), ("sbo", "po"), ("so", "po"), ("vo", "vo"), ("vso", "vo"), ("mbo", None)],
)
def test_swv_kind_for_sector(sector: Sector, kind: SwvKind | None) -> None:
    assert swv_kind_for_sector(sector) == kind


def test_school_lookups() -> None:
    refdata = sample_refdata()
    school = refdata.school("99AA", "01")
    assert school is not None
    assert school.code == "99AA01"
    assert school.gemeente == "GM9901"
    assert school.pc4 == "9911"
    assert school.sectors == {"po"}
    assert school.holiday_region == "midden"
    assert school.swv_po == "PO-99-01"
    assert [s.vestiging for s in refdata.schools_of_brin("99AA")] == ["00", "01"]
    assert refdata.school("99AA", "02") is None
    assert refdata.schools_of_brin("00ZZ") == ()


def test_blank_school_swvs_are_derived_from_the_location() -> None:
    haverlo = sample_refdata().school("99BA", "00")
    assert haverlo is not None
    assert haverlo.holiday_region == "noord"
    assert (haverlo.swv_po, haverlo.swv_vo) == ("PO-99-03", None)
    lyceum = sample_refdata().school("99BR", "00")
    assert lyceum is not None
    assert (lyceum.swv_po, lyceum.swv_vo) == (None, "VO-99-02")


def test_so_vso_school_belongs_to_a_po_and_a_vo_swv() -> None:
    school = sample_refdata().school("99BF", "00")
    assert school is not None
    assert school.sectors == {"so", "vso"}
    assert school.swv_for_sector("so") == "PO-99-01", "lies in the postcode exception"
    assert school.swv_for_sector("vso") == "VO-99-01"


def test_schools_of_swv() -> None:
    schools = sample_refdata().schools_of_swv("PO-99-03")
    assert {s.gemeente for s in schools} == {"GM9907", "GM9908"}
    assert all(s.swv_po == "PO-99-03" for s in schools)


def test_refdata_is_immutable() -> None:
    refdata = sample_refdata()
    with pytest.raises(dataclasses.FrozenInstanceError):
        refdata.gemeenten = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        refdata.gemeenten["GM0001"] = refdata.gemeenten["GM9901"]  # type: ignore[index]


# -- normalisers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [("363", "GM0363"), ("0363", "GM0363"), ("gm0363", "GM0363"), (" GM1680 ", "GM1680")],
)
def test_normalise_gemeente_code(raw: str, code: str) -> None:
    assert normalise_gemeente_code(raw) == code


@pytest.mark.parametrize("raw", ["", "GM", "GM12345", "GMABCD", "0", "GM0000", "AM0363"])
def test_normalise_gemeente_code_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match="gemeentecode"):
        normalise_gemeente_code(raw)


@pytest.mark.parametrize("raw", ["PO-22-02", "PO 22-02", "po2202", "PO22-02", "PO_22_02"])
def test_normalise_swv_code(raw: str) -> None:
    assert normalise_swv_code(raw) == "PO-22-02"


@pytest.mark.parametrize("raw", ["", "SO-22-02", "PO-2-02", "PO-22-022", "22-02"])
def test_normalise_swv_code_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match="samenwerkingsverband"):
        normalise_swv_code(raw)


@pytest.mark.parametrize(
    ("raw", "pc4"), [("1234", "1234"), ("1234 AB", "1234"), ("9999zz", "9999")]
)
def test_normalise_pc4(raw: str, pc4: str) -> None:
    assert normalise_pc4(raw) == pc4


@pytest.mark.parametrize("raw", ["0123", "123", "12345", "1234 A", "ABCD", "１２３４"])
def test_normalise_pc4_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match="postcode"):
        normalise_pc4(raw)


@pytest.mark.parametrize(
    ("raw", "sectors"),
    [
        ("po", {"po"}),
        ("so|vso", {"so", "vso"}),
        ("SO, VSO", {"so", "vso"}),
        ("bao", {"po"}),
        ("sbao", {"sbo"}),
        ("vo/vso", {"vo", "vso"}),
    ],
)
def test_parse_sectors(raw: str, sectors: set[str]) -> None:
    assert parse_sectors(raw) == sectors


@pytest.mark.parametrize("raw", ["", "  ", "ho", "po|wo"])
def test_parse_sectors_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match="sector"):
        parse_sectors(raw)


# -- parsers ---------------------------------------------------------------------------------


def test_parse_cbs_file_with_all_columns_and_padding() -> None:
    text = (
        "\ufeffGemeentecode;GemeentecodeGM;Gemeentenaam;Provinciecode;ProvinciecodePV;Provincienaam\n"
        '"0363";"GM0363  ";"Amsterdam  ";"27";"PV27";"Noord-Holland"\n'
        "\n"
        "0014;GM0014;Groningen;20;PV20;Groningen\n"
    )
    gemeenten = parse_gemeenten(text)
    assert [(g.code, g.name) for g in gemeenten] == [
        ("GM0014", "Groningen"),
        ("GM0363", "Amsterdam"),
    ]


def test_parse_gemeenten_comma_separated_with_bare_codes() -> None:
    text = 'Gemeentecode,Gemeentenaam\n363,Amsterdam\n"0518","\'s-Gravenhage"\n'
    assert [(g.code, g.name) for g in parse_gemeenten(text)] == [
        ("GM0363", "Amsterdam"),
        ("GM0518", "'s-Gravenhage"),
    ]


def test_parse_gemeenten_missing_column() -> None:
    with pytest.raises(RefDataError, match="Gemeentenaam"):
        parse_gemeenten("GemeentecodeGM;Provincienaam\nGM0363;Noord-Holland\n")


def test_parse_gemeenten_lists_every_problem_with_its_line() -> None:
    text = "GemeentecodeGM;Gemeentenaam\nGM0363;Amsterdam\nXX;Nergens\nGM0363;Dubbel\nGM0014;\n"
    with pytest.raises(RefDataError) as info:
        parse_gemeenten(text, source="g.csv")
    assert len(info.value.problems) == 3
    assert info.value.problems[0].startswith("g.csv:3: geen gemeentecode")
    assert info.value.problems[1] == "g.csv:4: GM0363: komt dubbel voor"
    assert info.value.problems[2] == "g.csv:5: GM0014: gemeentenaam ontbreekt"


def test_empty_file() -> None:
    with pytest.raises(RefDataError, match="leeg"):
        parse_gemeenten("")


def test_parse_schools_accepts_duo_code_variants() -> None:
    text = (
        "VESTIGINGSCODE;VESTIGINGSNAAM;GEMEENTENUMMER;SECTOREN;VAKANTIEREGIO\n"
        "12ab00;A;0001;po;Midden\n"
    )
    (school,) = parse_schools(text)
    assert (school.brin, school.vestiging, school.holiday_region) == ("12AB", "00", "midden")
    assert school.pc4 is None
    text = HEADER + "12AB;12AB01;B;1234 AB;1;vo;;VO 01-01;zuid\n12AC;1;C;;1;po;;;noord\n"
    first, second = parse_schools(text)
    assert (first.code, first.pc4, first.swv_vo, first.gemeente) == (
        "12AB01",
        "1234",
        "VO-01-01",
        "GM0001",
    )
    assert second.code == "12AC01", "Excel drops the leading zero"


def test_parse_schools_lists_every_problem() -> None:
    text = HEADER + (
        "1AB;00;Kort;;0001;po;;;midden\n"
        "12AB;000;Lang;;0001;po;;;midden\n"
        "12AB;00;Regio;;0001;po;;;oost\n"
        "12AB;00;Sector;;0001;hbo;;;midden\n"
        "12AB;00;Verwisseld;;0001;po;VO-01-01;;midden\n"
        "12AB;00;Goed;;0001;po;;;midden\n"
        "12AB;00;Dubbel;;0001;po;;;midden\n"
        "12AB;01;;;0001;po;;;midden\n"
        "12AB;02;Code;;0001;po;;;midden;\n"
    )
    with pytest.raises(RefDataError) as info:
        parse_schools(text)
    reasons = info.value.problems
    assert len(reasons) == 7
    assert "BRIN" in reasons[0]
    assert "vestigingsnummer" in reasons[1]
    assert "vakantieregio" in reasons[2]
    assert "sector" in reasons[3]
    assert "verwisseld" in reasons[4]
    assert "dubbel" in reasons[5]
    assert "vestigingsnaam" in reasons[6]


def test_parse_schools_vestigingscode_must_match_brin() -> None:
    text = "BRIN;VESTIGINGSCODE;NAAM;GEMEENTENUMMER;SECTOR;REGIO\n12AB;13CD00;X;1;po;noord\n"
    with pytest.raises(RefDataError, match="hoort niet bij BRIN 12AB"):
        parse_schools(text)


def test_parse_postcodes() -> None:
    text = (
        "SAMENWERKINGSVERBAND,GEMEENTENUMMER,POSTCODE VAN,POSTCODE TOT EN MET\n"
        "PO 01-01,3,1000,1099\nPO-01-01,3,1200,\n"
    )
    ranges = parse_swv_postcodes(text)
    assert [(e.swv, e.gemeente, e.pc4_from, e.pc4_to, e.kind) for e in ranges] == [
        ("PO-01-01", "GM0003", "1000", "1099", "po"),
        ("PO-01-01", "GM0003", "1200", "1200", "po"),
    ]
    with pytest.raises(RefDataError, match="achteruit"):
        parse_swv_postcodes("SWV;GEMEENTENUMMER;PC4 VAN;PC4 TOT\nPO-01-01;3;2000;1000\n")


def test_cp1252_files_are_read(tmp_path: Path) -> None:
    for name in ("gemeenten.csv", "swv_gemeenten.csv", SCHOOLS_FILE):
        (tmp_path / name).write_bytes((SAMPLE_DIR / name).read_bytes())
    (tmp_path / "gemeenten.csv").write_bytes(
        "GemeentecodeGM;Gemeentenaam\n".encode("cp1252")
        + "".join(
            f"{g.code};{g.name}{'ë' if g.code == 'GM9901' else ''}\n"
            for g in sample_refdata().gemeenten.values()
        ).encode("cp1252")
    )
    assert load_refdata(tmp_path).gemeente_name("GM9901") == "Aldermoerë"


# -- consistency between the files -----------------------------------------------------------


def test_minimal_build() -> None:
    refdata = build(schools=HEADER + "01AA;00;A;;0003;po|vo;;;zuid\n")
    school = refdata.school("01AA", "00")
    assert school is not None
    assert (school.swv_po, school.swv_vo) == ("PO-01-02", "VO-01-01")


def test_a_gemeente_in_two_swvs_of_one_kind_is_refused() -> None:
    with pytest.raises(RefDataError, match="GM0003 ligt in PO-01-02 en PO-01-01"):
        build(swv_gemeenten=SWV_GEMEENTEN + "PO-01-01;Po een;0003\n")


def test_build_lists_every_inconsistency() -> None:
    with pytest.raises(RefDataError) as info:
        build(
            swv_gemeenten=SWV_GEMEENTEN + "VO-01-02;Vo twee;0009\nVO-01-02;Ander;0009\n",
            postcodes=(
                "SAMENWERKINGSVERBAND;GEMEENTENUMMER;POSTCODE VAN;POSTCODE TOT EN MET\n"
                "PO-01-01;0003;1000;1099\n"
                "PO-01-01;0003;1050;1150\n"
                "PO-09-09;0003;2000;2000\n"
                "PO-01-01;0001;3000;3000\n"
            ),
            schools=HEADER + "01AA;00;A;;0009;po;;;zuid\n" + "01AB;00;B;;0001;po;PO-07-07;;zuid\n",
        )
    problems = "\n".join(info.value.problems)
    assert "GM0009 staat niet in de gemeentelijst" in problems
    assert "VO-01-02 heeft twee namen" in problems
    assert "overlapt 1000-1099" in problems
    assert "PO-09-09 GM0003 2000-2000: SWV staat niet in" in problems
    assert "de gemeente ligt al geheel in dit SWV" in problems
    assert "01AA00: GM0009 staat niet in de gemeentelijst" in problems
    assert "01AA00: geen SWV po te vinden" in problems
    assert "01AB00: onbekend SWV PO-07-07" in problems
    assert len(info.value.problems) == 9


def test_identical_membership_rows_are_harmless() -> None:
    refdata = build(swv_gemeenten=SWV_GEMEENTEN + "PO-01-01;Po een;0001\n")
    swv = refdata.swv("PO-01-01")
    assert swv is not None
    assert swv.gemeenten == {"GM0001", "GM0002"}


# -- loading a directory ---------------------------------------------------------------------


def test_load_refdata_from_a_directory(tmp_path: Path) -> None:
    for name in ("gemeenten.csv", "swv_gemeenten.csv", SCHOOLS_FILE):
        (tmp_path / name).write_bytes((SAMPLE_DIR / name).read_bytes())
    without_exceptions = load_refdata(str(tmp_path))
    assert len(without_exceptions.schools) == 49
    swv = without_exceptions.swv_for_gemeente("GM9904", "po", "9946")
    assert swv is not None
    assert swv.code == "PO-99-02", "no swv_postcodes.csv: no exceptions"
    (tmp_path / SWV_POSTCODES_FILE).write_bytes((SAMPLE_DIR / SWV_POSTCODES_FILE).read_bytes())
    swv = load_refdata(tmp_path).swv_for_gemeente("GM9904", "po", "9946")
    assert swv is not None
    assert swv.code == "PO-99-01"


def test_load_refdata_names_missing_files(tmp_path: Path) -> None:
    with pytest.raises(RefDataError) as info:
        load_refdata(tmp_path)
    assert len(info.value.problems) == 3
    assert all("bestand ontbreekt" in p for p in info.value.problems)


def test_repr_is_short() -> None:
    assert repr(sample_refdata()) == "RefData(8 gemeenten, 5 SWVs, 49 vestigingen)"
