"""Logging in with FormRequest.from_response, then scraping members-only pages.

The login form carries a CSRF token in a hidden field and the site sets a session
cookie: from_response copies the hidden fields (and clicks the submit button),
and the crawler's cookie jar sends the cookie back on every later request.

Try it against the test suite's login site::

    python tests/spiders/toolkit_sites.py login       # prints http://127.0.0.1:PORT
    pooledcrawl crawl examples/login_form.py -a base=http://127.0.0.1:PORT -o secrets.jsonl
"""

from pooledcrawl import CloseSpider, FormRequest, Request, Response, Spider


class MembersSpider(Spider):
    name = "members"
    base = "http://127.0.0.1:8000"
    username = "alice"
    password = "wonderland"

    async def start(self):
        yield Request(self.base.rstrip("/") + "/login", callback=self.login)

    def login(self, response: Response):
        yield FormRequest.from_response(
            response,
            formcss="form#login",
            formdata={"username": self.username, "password": self.password},
            callback=self.after_login,
        )

    def after_login(self, response: Response):
        if "Welcome" not in response.text:
            raise CloseSpider("login failed")
        for secret in response.css("li.secret::text").getall():
            yield {"secret": secret, "page": response.url}
        yield from response.follow_all(css="a.next", callback=self.after_login)
