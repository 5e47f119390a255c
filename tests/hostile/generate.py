#!/usr/bin/env python3
"""Writes the hostile corpus's generated inputs (tests/hostile/cases.csv names them all).

    generate.py OUTDIR

Files a person can read are committed under tests/hostile/files/; the ones here are large,
binary or crafted byte by byte (zip bombs, lying zip headers, one endless CSV row). Everything
is deterministic and uses the standard library only, so the test can run it anywhere.
"""

import io
import os
import struct
import sys
import zipfile
import zlib

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
RELS = 'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"'
OUTLETS_HEADER = ["网点编号", "运营企业统一社会信用代码", "所在社区代码", "进驻方式", "载体",
                  "服务项目", "开业日期", "面积", "减免租金", "水电居民价", "连锁经营", "补助金额",
                  "平急结合"]

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    '</Types>')
ROOT_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships {RELS}>'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
    '</Relationships>')
WORKBOOK_RELS = (
    f'<?xml version="1.0" encoding="UTF-8"?><Relationships {RELS}>'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
    '</Relationships>')


def workbook(sheet_name="outlets"):
    return (f'<?xml version="1.0" encoding="UTF-8"?><workbook {NS} '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheets><sheet name="{sheet_name}" sheetId="1" r:id="rId1"/></sheets></workbook>')


def inline_row(number, values):
    cells = "".join(f'<c r="{col}{number}" t="inlineStr"><is><t>{v}</t></is></c>'
                    for col, v in zip(columns(), values))
    return f'<row r="{number}">{cells}</row>'


def columns():
    for i in range(26 * 27):
        yield (chr(64 + i // 26) if i >= 26 else "") + chr(65 + i % 26)


HEADER_ROW = inline_row(1, OUTLETS_HEADER)


def sheet(rows="", before=""):
    return f'<?xml version="1.0" encoding="UTF-8"?><worksheet {NS}>{before}<sheetData>{rows}</sheetData></worksheet>'


def sst(strings, attrs=""):
    items = "".join(f"<si><t>{s}</t></si>" for s in strings)
    return f'<?xml version="1.0" encoding="UTF-8"?><sst {NS}{attrs}>{items}</sst>'


def write_xlsx(name, parts, sheet_name="outlets"):
    """parts: name -> str, bytes, or a function writing into a file object (for big parts)."""
    base = {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": ROOT_RELS,
        "xl/workbook.xml": workbook(sheet_name),
        "xl/_rels/workbook.xml.rels": WORKBOOK_RELS,
        "xl/worksheets/sheet1.xml": sheet(HEADER_ROW),
        "xl/sharedStrings.xml": sst([]),
    }
    base.update(parts)
    path = os.path.join(OUT, name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for part, content in base.items():
            if content is None:
                continue
            if callable(content):
                with z.open(part, "w", force_zip64=True) as f:
                    content(f)
            else:
                z.writestr(part, content)
    return path


def repeated(prefix, chunk, times, suffix):
    def write(f):
        f.write(prefix.encode())
        block = chunk.encode() * ((1 << 20) // max(1, len(chunk)))
        written = 0
        total = len(chunk) * times
        while written < total:
            piece = block[: total - written]
            f.write(piece)
            written += len(piece)
        f.write(suffix.encode())
    return write


# --- workbooks -----------------------------------------------------------------------------

write_xlsx("xlsx-sst-claims-1e12.xlsx", {
    "xl/sharedStrings.xml": sst(["网点编号"], ' count="1000000000000" uniqueCount="1000000000000"')})
write_xlsx("xlsx-sst-count-overflows.xlsx", {
    "xl/sharedStrings.xml": sst(["a"], ' uniqueCount="99999999999999999999999999"')})
def distinct_strings(f):
    f.write(f'<?xml version="1.0"?><sst {NS}>'.encode())
    for i in range(900_000):
        f.write(f"<si><t>{i * 7919 % 1000003}</t></si>".encode())
    f.write(b"</sst>")


write_xlsx("xlsx-sst-900k-strings.xlsx", {"xl/sharedStrings.xml": distinct_strings})
write_xlsx("xlsx-cell-at-column-FXSHRXW.xlsx", {
    "xl/worksheets/sheet1.xml": sheet(HEADER_ROW + '<row r="2"><c r="FXSHRXW2" t="inlineStr"><is><t>x</t></is></c></row>')})
write_xlsx("xlsx-cell-at-column-XFD.xlsx", {
    "xl/worksheets/sheet1.xml": sheet('<row r="1"><c r="XFD1" t="inlineStr"><is><t>网点编号</t></is></c></row>')})
write_xlsx("xlsx-one-600MB-shared-string.xlsx", {
    "xl/sharedStrings.xml": repeated(f'<?xml version="1.0"?><sst {NS} count="1" uniqueCount="1"><si><t>',
                                     "x", 600 << 20, "</t></si></sst>")})
write_xlsx("xlsx-one-200KB-shared-string.xlsx", {
    "xl/sharedStrings.xml": sst(["x" * 200_000])})
write_xlsx("xlsx-inline-600MB-cell.xlsx", {
    "xl/worksheets/sheet1.xml": repeated(
        f'<?xml version="1.0"?><worksheet {NS}><sheetData>{HEADER_ROW}<row r="2"><c r="A2" t="inlineStr"><is><t>',
        "x", 600 << 20, "</t></is></c></row></sheetData></worksheet>")})
write_xlsx("xlsx-zip-bomb-1GB.xlsx", {
    "xl/worksheets/sheet1.xml": repeated(
        f'<?xml version="1.0"?><worksheet {NS}><sheetData>',
        '<row><c t="inlineStr"><is><t>0</t></is></c></row>', (1 << 30) // 48,
        "</sheetData></worksheet>")})
write_xlsx("xlsx-billion-laughs.xlsx", {
    "xl/sharedStrings.xml": '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + f']><sst {NS}><si><t>&lol9;</t></si></sst>'})
write_xlsx("xlsx-doctype-in-sheet.xlsx", {
    "xl/worksheets/sheet1.xml": '<?xml version="1.0"?><!DOCTYPE worksheet SYSTEM "file:///etc/passwd">'
    + f'<worksheet {NS}><sheetData>{HEADER_ROW}</sheetData></worksheet>'})
write_xlsx("xlsx-deep-nesting.xlsx", {
    "xl/worksheets/sheet1.xml": sheet(HEADER_ROW + '<row r="2"><c r="A2">' + "<x>" * 100_000 + "</x>" * 100_000 + "</c></row>")})
write_xlsx("xlsx-1500-parts.xlsx", {f"xl/media/image{i}.xml": "<a/>" for i in range(1500)})
# Runs of 600 KB: past the longest cell Excel can write, below the size at which a part's
# compression ratio is checked, so the XML scan is what refuses them.
write_xlsx("xlsx-600KB-attribute.xlsx", {
    "xl/worksheets/sheet1.xml": sheet(f'<row r="1" x="{">" * 600_000}">' + HEADER_ROW[len('<row r="1">'):])})
write_xlsx("xlsx-600KB-comment.xlsx", {
    "xl/worksheets/sheet1.xml": sheet(HEADER_ROW, before="<!--" + "-> " * 200_000 + "-->")})
write_xlsx("xlsx-600KB-cdata.xlsx", {
    "xl/worksheets/sheet1.xml": sheet('<row r="1"><c r="A1" t="inlineStr"><is><t><![CDATA[' + "]>" * 300_000 + "]]></t></is></c></row>")})
write_xlsx("xlsx-600KB-processing-instruction.xlsx", {
    "xl/worksheets/sheet1.xml": sheet(HEADER_ROW, before="<?pi " + "x>" * 300_000 + "?>")})
write_xlsx("xlsx-row-number-overflows.xlsx", {
    "xl/worksheets/sheet1.xml": sheet('<row r="99999999999999"><c r="A99999999999999" t="inlineStr"><is><t>网点编号</t></is></c></row>')})
write_xlsx("xlsx-cell-reference-garbage.xlsx", {
    "xl/worksheets/sheet1.xml": sheet('<row r="1"><c r="ZZZZZZZZZZZZZZZZ99999999999999999999" t="inlineStr"><is><t>x</t></is></c></row>')})
write_xlsx("xlsx-shared-formula-index-huge.xlsx", {
    "xl/worksheets/sheet1.xml": sheet('<row r="1"><c r="A1"><f t="shared" ref="A1:A9" si="4000000000">1+1</f><v>2</v></c></row>')})
write_xlsx("xlsx-shared-string-index-out-of-range.xlsx", {
    "xl/worksheets/sheet1.xml": sheet('<row r="1"><c r="A1" t="s"><v>4294967295</v></c><c r="B1" t="s"><v>-1</v></c></row>')})
write_xlsx("xlsx-no-workbook.xlsx", {"xl/workbook.xml": None, "_rels/.rels": None})
write_xlsx("xlsx-sheet-is-not-a-worksheet.xlsx", {
    "xl/worksheets/sheet1.xml": f'<?xml version="1.0"?><chartsheet {NS}><sheetPr/></chartsheet>'})
write_xlsx("xlsx-sheet-named-by-an-id-number.xlsx", {
    "xl/worksheets/sheet1.xml": sheet(HEADER_ROW + inline_row(2, ["11010519491231002X"] * 3))},
    sheet_name="11010519491231002X")

# Enterprises allow 100,000 rows: one more than that, as a workbook.
ENTERPRISES_HEADER = ["统一社会信用代码", "企业名称", "注册地区县代码", "是否员工制", "是否重点联系企业",
                      "产教融合型企业", "是否龙头企业"]


def many_rows(f):
    f.write(f'<?xml version="1.0"?><worksheet {NS}><sheetData>'.encode())
    f.write(inline_row(1, ENTERPRISES_HEADER).encode())
    for r in range(2, 100_000 + 30):
        f.write(f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>x</t></is></c></row>'.encode())
    f.write(b"</sheetData></worksheet>")


write_xlsx("xlsx-enterprises-100030-rows.xlsx", {"xl/worksheets/sheet1.xml": many_rows}, "enterprises")

# A part whose real size is 10 MB while the zip directory says 100 bytes.
lying = write_xlsx("xlsx-lying-part-size.xlsx", {
    "xl/worksheets/sheet1.xml": repeated(f'<?xml version="1.0"?><worksheet {NS}><sheetData>',
                                         "<row/>", (10 << 20) // 6, "</sheetData></worksheet>")})
data = bytearray(open(lying, "rb").read())
name = b"xl/worksheets/sheet1.xml"
for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
    at = 0
    while True:
        at = data.find(signature, at)
        if at < 0:
            break
        name_at = at + (30 if signature == b"PK\x03\x04" else 46)
        if data[name_at:name_at + len(name)] == name:
            struct.pack_into("<I", data, at + size_offset, 100)
        at += 4
open(lying, "wb").write(bytes(data))

# A zip entry flagged as encrypted, and one stored with an unknown compression method.
for case, flag, method in (("xlsx-encrypted-entry.xlsx", 0x1, None), ("xlsx-unknown-compression.xlsx", 0, 99)):
    path = write_xlsx(case, {})
    data = bytearray(open(path, "rb").read())
    for signature, flag_offset, method_offset in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = data.find(signature)
        while at >= 0:
            struct.pack_into("<H", data, at + flag_offset, struct.unpack_from("<H", data, at + flag_offset)[0] | flag)
            if method is not None:
                struct.pack_into("<H", data, at + method_offset, method)
            at = data.find(signature, at + 4)
    open(path, "wb").write(bytes(data))

# A valid workbook cut in half.
whole = io.BytesIO()
with zipfile.ZipFile(whole, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("[Content_Types].xml", CONTENT_TYPES)
    z.writestr("_rels/.rels", ROOT_RELS)
    z.writestr("xl/workbook.xml", workbook())
    z.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
    z.writestr("xl/worksheets/sheet1.xml", sheet(HEADER_ROW * 50))
open(os.path.join(OUT, "xlsx-truncated.xlsx"), "wb").write(whole.getvalue()[: len(whole.getvalue()) // 2])

# Other zip-based formats that sniff as XLSX.
with zipfile.ZipFile(os.path.join(OUT, "xlsb-workbook.xlsx"), "w") as z:
    z.writestr("[Content_Types].xml", CONTENT_TYPES)
    z.writestr("xl/workbook.bin", b"\x83\x01\x00" * 100)
with zipfile.ZipFile(os.path.join(OUT, "ods-spreadsheet.xlsx"), "w") as z:
    z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
    z.writestr("content.xml", "<office:document-content/>")

# Legacy XLS (compound file) whose dimensions record claims 0xFFFFFFFF rows.
cfb = bytearray(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)
cfb += struct.pack("<HHIIHH", 0x0200, 14, 0, 0xFFFFFFFF, 0, 0xFFFF) + b"\x00" * 1000
open(os.path.join(OUT, "xls-dimensions-ffffffff.xls"), "wb").write(bytes(cfb))

# --- CSV -----------------------------------------------------------------------------------


def write_stream(name, head, chunk, times, tail=b""):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(head)
        block = chunk * max(1, (1 << 20) // len(chunk))
        left = len(chunk) * times
        while left > 0:
            piece = block[:left]
            f.write(piece)
            left -= len(piece)
        f.write(tail)


header = ",".join(OUTLETS_HEADER).encode() + b"\n"
write_stream("csv-one-200MB-row-of-commas.csv", b"", b",", 200 << 20, b"\n")
write_stream("csv-50MB-quoted-cell-of-line-breaks.csv", header + b'"', b"x\n", 25 << 20, b'"\n')
write_stream("csv-unterminated-quote-100MB.csv", header + b'A1,"', b"y", 100 << 20)
write_stream("csv-10-million-blank-lines.csv", b"", b"\n", 10_000_000)
write_stream("csv-enterprises-100030-rows.csv", ",".join(ENTERPRISES_HEADER).encode() + b"\n", b"x\n", 100_030)
with open(os.path.join(OUT, "csv-random-high-bytes.csv"), "wb") as f:
    seed = 12345
    out = bytearray()
    for _ in range(200_000):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(0x81 + seed % 0x7E)
    f.write(bytes(out))

# --- SQL -----------------------------------------------------------------------------------


def sql(name, text):
    open(os.path.join(OUT, name), "w").write(text)


def values(n, alias):
    return "(VALUES " + ",".join(f"({i})" for i in range(1, n + 1)) + f") {alias}"


sql("sql-plus-2000-terms.sql", "SELECT " + "+".join(["1"] * 2000))
sql("sql-3000-union-all.sql", " UNION ALL ".join(["SELECT 1"] * 3000))
sql("sql-40-union-all.sql", " UNION ALL ".join(["SELECT 1"] * 40))
sql("sql-100-nested-parentheses.sql", "SELECT " + "(" * 100 + "1" + ")" * 100)
sql("sql-40-nested-subqueries.sql", "SELECT " + "(SELECT " * 40 + "1" + ")" * 40)
sql("sql-9KB-statement.sql", "SELECT '" + "x" * 9000 + "'")
sql("sql-cross-join-1e10-rows.sql",
    "SELECT sum(a.column1 * b.column1 + c.column1 * d.column1 + e.column1) FROM "
    + ", ".join(values(100, t) for t in "abcde"))
sql("sql-sort-1e8-rows.sql",
    "SELECT a.column1 + b.column1 * 100 + c.column1 * 10000 + d.column1 * 1000000 AS v FROM "
    + ", ".join(values(100, t) for t in "abcd") + " ORDER BY v DESC")
print(f"corpus written to {OUT}")
