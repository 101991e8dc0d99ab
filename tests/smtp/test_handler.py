"""aiosmtpd handler for the tests: a Maildir (every accepted message is one file in DIR/new/,
as aiosmtpd.handlers.Mailbox writes it) plus failure cases chosen by the recipient's local part:

- ``reject...@``   : 550 at RCPT (a permanent refusal, never to be retried);
- ``tempfail...@`` : 451 at RCPT the first time this address is seen, accepted afterwards;
- anything else    : accepted.

Run: python -m aiosmtpd -n -l 127.0.0.1:PORT -c test_handler.TestHandler DIR
(with this folder on PYTHONPATH). Every RCPT is appended to DIR/rcpt.log as "<code> <address>".
"""

import mailbox
import os

from aiosmtpd.handlers import Mailbox


class TestHandler(Mailbox):
    def __init__(self, mail_dir):
        super().__init__(mail_dir)
        self.dir = mail_dir
        self.seen = set()

    def _log(self, code, address):
        with open(os.path.join(self.dir, "rcpt.log"), "a", encoding="utf-8") as f:
            f.write(f"{code} {address}\n")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            self._log(550, address)
            return "550 5.1.1 No such user here"
        if local.startswith("tempfail") and address not in self.seen:
            self.seen.add(address)
            self._log(451, address)
            return "451 4.3.0 Try again later"
        self._log(250, address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("the handler needs the Maildir path")
        path = args[0]
        if not os.path.isdir(path):
            mailbox.Maildir(path, create=True)
        return cls(path)
