"""Form submission: Scrapy's ``FormRequest`` and ``FormRequest.from_response``.

``from_response`` builds what a browser would send for a form on the page. It
follows the HTML standard's "constructing the entry list": the fields in
document order, hidden ones included (that is how CSRF tokens travel), checked
checkboxes and radios only, each ``<select>``'s selected options (the first one
if none is selected), ``<textarea>`` text, and the submit button clicked. Unlike
Scrapy, disabled controls are left out, as browsers leave them out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from pooledcrawl.http.request import Callback, Request

if TYPE_CHECKING:
    from pooledcrawl.http.response import Response

__all__ = ["FormRequest"]

FormValue = str | Iterable[str] | None
FormData = Mapping[str, FormValue] | Iterable[tuple[str, FormValue]]

_FORM_METHODS = ("GET", "POST")
_HTML5_SPACE = " \t\n\r\x0c"
_FIELD_TEST = (
    "local-name()='input' or local-name()='select' or local-name()='textarea'"
    " or local-name()='button'"
)
_FIELDS = f"descendant::*[{_FIELD_TEST}]"
# controls anywhere in the document that name their form by id (HTML's form="")
_OWNED_ELSEWHERE = f"//*[({_FIELD_TEST}) and @form]"


class FormRequest(Request):
    """A Request that sends ``formdata`` urlencoded: in the body for POST (the
    default when there is formdata), in the query string for GET."""

    __slots__ = ()

    def __init__(
        self,
        url: str,
        callback: Callback | None = None,
        *,
        formdata: FormData | None = None,
        method: str | None = None,
        encoding: str = "utf-8",
        **kwargs: Any,
    ) -> None:
        if method is None:
            method = "POST" if formdata else "GET"
        pairs = _pairs(formdata) if formdata else []
        if formdata and method.upper() == "POST":
            headers = dict(kwargs.pop("headers", None) or {})
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            kwargs["headers"] = headers
            kwargs["body"] = _urlencode(pairs, encoding)
        elif formdata:
            # a GET form replaces the action's query, as browsers do
            url = urlunsplit(urlsplit(url)._replace(query=_urlencode(pairs, encoding)))
        super().__init__(url, callback, method=method, **kwargs)

    @classmethod
    def from_response(
        cls,
        response: Response,
        formname: str | None = None,
        formid: str | None = None,
        formnumber: int = 0,
        formdata: FormData | None = None,
        clickdata: Mapping[str, str | int] | None = None,
        dont_click: bool = False,
        formxpath: str | None = None,
        formcss: str | None = None,
        **kwargs: Any,
    ) -> FormRequest:
        """The request that submitting a form of ``response`` sends.

        The form is the one named ``formname``, else with id ``formid``, else the
        one containing what ``formxpath``/``formcss`` selects, else the
        ``formnumber``-th. ``formdata`` overrides fields (None removes one).
        ``clickdata`` picks the submit button by attributes or by ``nr`` (its
        index among the form's submit buttons); ``dont_click`` clicks none.
        Other keyword arguments go to the request (``callback``, ``meta``,
        ``url`` and ``method`` overrides...).
        """
        if formcss is not None:
            from pooledcrawl.http.markup import css_to_xpath as _css_to_xpath

            formxpath = _css_to_xpath(formcss)
        form = _find_form(response, formname, formid, formnumber, formxpath)
        overrides = _pairs(formdata) if formdata else []
        override_names = {name for name, _ in overrides}
        values = [(k, v) for k, v in _form_values(form) if k not in override_names]
        if not dont_click:
            clicked = _clicked(form, clickdata)
            if clicked is not None and clicked[0] not in override_names:
                values.append(clicked)
        values.extend((k, v) for k, v in overrides if v is not None)
        action = kwargs.pop("url", None)
        if action is None:
            action = (form.get("action") or "").strip(_HTML5_SPACE)
        method = kwargs.pop("method", None) or (form.get("method") or "GET")
        method = method.upper()
        if method not in _FORM_METHODS:
            method = "GET"  # "dialog", or anything unknown: browsers fall back to GET
        kwargs.setdefault("encoding", response.encoding_hint or response._encoding())
        return cls(response.urljoin(action), formdata=values, method=method, **kwargs)


def _pairs(formdata: FormData) -> list[tuple[str, FormValue]]:
    items = formdata.items() if isinstance(formdata, Mapping) else formdata
    return [(str(k), v) for k, v in items]


def _urlencode(pairs: Iterable[tuple[str, FormValue]], encoding: str) -> str:
    flat: list[tuple[bytes, bytes]] = []
    for key, value in pairs:
        if value is None:
            continue
        for v in [value] if isinstance(value, str) else value:
            flat.append(
                (key.encode(encoding, "xmlcharrefreplace"), v.encode(encoding, "xmlcharrefreplace"))
            )
    return urlencode(flat)


def _local(element: Any) -> str:
    tag = element.tag
    return tag.rpartition("}")[2].lower() if isinstance(tag, str) else ""


def _find_form(
    response: Response,
    formname: str | None,
    formid: str | None,
    formnumber: int,
    formxpath: str | None,
) -> Any:
    root = response.selector.root
    forms = root.xpath("//*[local-name()='form']")
    if not forms:
        raise ValueError(f"no <form> element found in {response}")
    if formname is not None:
        for form in forms:
            if form.get("name") == formname:
                return form
    if formid is not None:
        for form in forms:
            if form.get("id") == formid:
                return form
    if formxpath is not None:
        nodes = response.xpath(formxpath)
        for node in nodes:
            element = node.root
            while element is not None and not isinstance(element, str):
                if _local(element) == "form":
                    return element
                element = element.getparent()
        raise ValueError(f"no <form> element found with {formxpath!r} in {response}")
    try:
        return forms[formnumber]
    except IndexError:
        raise IndexError(f"form number {formnumber} not found in {response}") from None


def _disabled(element: Any) -> bool:
    if element.get("disabled") is not None:
        return True
    # inside a disabled <fieldset>, except in its first <legend>
    for fieldset in element.iterancestors():
        if _local(fieldset) != "fieldset" or fieldset.get("disabled") is None:
            continue
        legends = [c for c in fieldset if _local(c) == "legend"]
        if not legends or not any(a is legends[0] for a in element.iterancestors()):
            return True
    return False


def _controls(form: Any) -> list[Any]:
    """The form's controls in document order, as the HTML standard assigns them: a
    control with a ``form`` attribute belongs to the form with that id, wherever
    it is; one without belongs to the form it is inside."""
    inside = form.xpath(_FIELDS)
    elsewhere = form.xpath(_OWNED_ELSEWHERE)
    if not elsewhere:
        return list(inside)
    form_id = form.get("id")
    owned = [e for e in inside if e.get("form") is None or e.get("form") == form_id]
    if form_id:
        owned.extend(e for e in elsewhere if e.get("form") == form_id and e not in owned)
        # back in document order: position of each element in a full walk
        order = {id(e): i for i, e in enumerate(form.getroottree().iter())}
        owned.sort(key=lambda e: order[id(e)])
    return owned


def _form_values(form: Any) -> list[tuple[str, FormValue]]:
    values: list[tuple[str, FormValue]] = []
    for element in _controls(form):
        name = element.get("name")
        if not name or _disabled(element):
            continue
        tag = _local(element)
        if tag == "input":
            kind = (element.get("type") or "text").lower()
            if kind in ("submit", "image", "reset", "button"):
                continue  # buttons count only when clicked
            if kind in ("checkbox", "radio"):
                if element.get("checked") is None:
                    continue
                values.append((name, element.get("value") or "on"))
            else:
                values.append((name, element.get("value") or ""))
        elif tag == "select":
            values.extend((name, v) for v in _selected(element))
        elif tag == "textarea":
            text = "".join(element.itertext())
            # the HTML parser drops a newline right after <textarea>; lxml keeps it
            values.append((name, text[1:] if text.startswith("\n") else text))
    return values


def _selected(select: Any) -> list[str]:
    options = [o for o in select.iter() if _local(o) == "option"]
    chosen = [o for o in options if o.get("selected") is not None]
    if not chosen and select.get("multiple") is None:
        # a single select shows (and submits) its first enabled option
        first = next((o for o in options if o.get("disabled") is None), None)
        chosen = [first] if first is not None else []
    result = []
    for option in chosen:
        if option.get("disabled") is not None:
            continue
        value = option.get("value")
        if value is None:
            value = " ".join("".join(option.itertext()).split())
        result.append(value)
    return result


def _clicked(form: Any, clickdata: Mapping[str, str | int] | None) -> tuple[str, str] | None:
    """The (name, value) of the submit button clicked, or None (no named button)."""
    buttons = [
        element for element in _controls(form) if _is_submit(element) and not _disabled(element)
    ]
    if not buttons:
        return None
    chosen: Any
    if clickdata is None:
        chosen = buttons[0]
    else:
        wanted = dict(clickdata)
        nr = wanted.pop("nr", None)
        candidates = buttons
        if nr is not None:
            if not isinstance(nr, int) or not 0 <= nr < len(buttons):
                raise ValueError(f"no submit button number {nr!r} in the form")
            candidates = [buttons[nr]]
        matching = [b for b in candidates if all(b.get(k) == str(v) for k, v in wanted.items())]
        if not matching:
            raise ValueError(f"no submit button matching clickdata {dict(clickdata)!r}")
        if len(matching) > 1:
            raise ValueError(f"several submit buttons match clickdata {dict(clickdata)!r}")
        chosen = matching[0]
    name = chosen.get("name")
    if not name:
        return None
    return name, chosen.get("value") or ""


def _is_submit(element: Any) -> bool:
    tag = _local(element)
    kind = (element.get("type") or "").lower()
    if tag == "input":
        return kind in ("submit", "image")
    return tag == "button" and kind in ("", "submit")
