"""Text folded for search: Latin letters without their accents, and in lower case, so that
"elan", "ELAN" and "Élan" all read "elan".

Each database folds a batch's search text (ProductionBatch.search_text) and a search term with
the same function of its own, so a term finds the text that contains it: PostgreSQL with its
built-in, immutable translate() and lower(); SQLite, which has no translate(), with `fold` as a
deterministic function of each connection (as Django gives SQLite its date functions).
"""

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Func, TextField
from django.db.models.sql.compiler import SQLCompiler

SQLITE_FUNCTION = "batches_fold"
# The plain letters that Latin letters with diacritics (Latin-1 Supplement, Latin Extended-A
# and -B, Latin Extended Additional) fold to, with the letters that fold to each.
PLAIN_LETTERS = {
    "a": "ÀÁÂÃÄÅàáâãäåĀāĂăĄąǍǎǞǟǠǡǺǻȀȁȂȃȦȧḀḁẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặ",
    "ae": "Ææ",
    "b": "ḂḃḄḅḆḇ",
    "c": "ÇçĆćĈĉĊċČčḈḉ",
    "d": "ÐðĎďĐđḊḋḌḍḎḏḐḑḒḓ",
    "dz": "ǄǅǆǱǲǳ",
    "e": "ÈÉÊËèéêëĒēĔĕĖėĘęĚěȄȅȆȇȨȩḔḕḖḗḘḙḚḛḜḝẸẹẺẻẼẽẾếỀềỂểỄễỆệ",
    "f": "Ḟḟ",
    "g": "ĜĝĞğĠġĢģǦǧǴǵḠḡ",
    "h": "ĤĥĦħȞȟḢḣḤḥḦḧḨḩḪḫẖ",
    "i": "ÌÍÎÏìíîïĨĩĪīĬĭĮįİıǏǐȈȉȊȋḬḭḮḯỈỉỊị",
    "ij": "Ĳĳ",
    "j": "Ĵĵǰ",
    "k": "ĶķǨǩḰḱḲḳḴḵ",
    "l": "ĹĺĻļĽľĿŀŁłḶḷḸḹḺḻḼḽ",
    "lj": "Ǉǈǉ",
    "m": "ḾḿṀṁṂṃ",
    "n": "ÑñŃńŅņŇňǸǹṄṅṆṇṈṉṊṋ",
    "nj": "Ǌǋǌ",
    "o": "ÒÓÔÕÖØòóôõöøŌōŎŏŐőƠơǑǒǪǫǬǭȌȍȎȏȪȫȬȭȮȯȰȱṌṍṎṏṐṑṒṓỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợ",
    "oe": "Œœ",
    "p": "ṔṕṖṗ",
    "r": "ŔŕŖŗŘřȐȑȒȓṘṙṚṛṜṝṞṟ",
    "s": "ŚśŜŝŞşŠšſȘșṠṡṢṣṤṥṦṧṨṩẛ",
    "ss": "ßẞ",
    "t": "ŢţŤťŦŧȚțṪṫṬṭṮṯṰṱẗ",
    "th": "Þþ",
    "u": "ÙÚÛÜùúûüŨũŪūŬŭŮůŰűŲųƯưǓǔǕǖǗǘǙǚǛǜȔȕȖȗṲṳṴṵṶṷṸṹṺṻỤụỦủỨứỪừỬửỮữỰự",
    "v": "ṼṽṾṿ",
    "w": "ŴŵẀẁẂẃẄẅẆẇẈẉẘ",
    "x": "ẊẋẌẍ",
    "y": "ÝýÿŶŷŸȲȳẎẏẙỲỳỴỵỶỷỸỹ",
    "z": "ŹźŻżŽžẐẑẒẓẔẕ",
}
_TABLE = {ord(letter): plain for plain, letters in PLAIN_LETTERS.items() for letter in letters}


def fold(text: str) -> str:
    """The text without accents, in lower case."""
    return text.translate(_TABLE).lower()


def register_sqlite_function(connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """Give a new SQLite connection the fold function (connected to connection_created): the
    batch table's search text is computed with it."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            SQLITE_FUNCTION, 1, _fold_sql_value, deterministic=True
        )


def _fold_sql_value(value: object) -> object:
    """fold() for SQL's values: text folded, anything else (NULL) as it is."""
    return fold(value) if isinstance(value, str) else value


class Folded(Func):
    """An expression's text folded, by the database (see the module)."""

    function = SQLITE_FUNCTION
    arity = 1
    output_field = TextField()

    def as_postgresql(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, list[Any]]:
        sql, text_params = compiler.compile(self.source_expressions[0])
        single = [(chr(code), plain) for code, plain in _TABLE.items() if len(plain) == 1]
        sql = f"translate({sql}, %s, %s)"
        params: list[Any] = [
            *text_params,
            "".join(a for a, _ in single),
            "".join(p for _, p in single),
        ]
        for code, plain in _TABLE.items():
            if len(plain) > 1:
                sql = f"replace({sql}, %s, %s)"
                params += [chr(code), plain]
        return f"lower({sql})", params
