"""Agents answering from the command line: ``mailer reply`` and ``mailer note``."""

from __future__ import annotations

import secrets

from sqlmodel import Session

from mailer import tickets
from mailer.app import App
from mailer.errors import ConfigError
from mailer.ingest.mail import Address, ParsedMail
from mailer.outbound.respond import relay_agent_reply
from mailer.pipeline import Services


def answer(app: App, number: str, agent: str, body: str, internal: bool) -> str:
    """Queue a public reply to the customer, or store an internal note; returns the kind."""
    if not app.config.agents.is_agent(agent):
        raise ConfigError("--from", f"{agent} is not an agent address ([agents] in the config)")
    if not body.strip():
        raise ConfigError("--body-file", "the body is empty")
    with Session(app.engine) as session:
        ticket = tickets.by_number(session, number)
        if ticket is None:
            raise ConfigError("number", f"no ticket {number}")
        text = f"#note {body}" if internal and not body.lstrip().startswith("#note") else body
        services = Services(app.config, app.signer, session, app.rules)
        kind = relay_agent_reply(services, ticket.id, text, f"cli-{secrets.token_hex(4)}",
                                 agent.split("@", 1)[0])
        if kind == "note":
            note = ParsedMail(message_id=f"<note.{secrets.token_hex(8)}@mailer.invalid>",
                              synthetic_id=True, subject="", from_=Address("", agent.lower()),
                              text=body, new_text=body)
            tickets.add_message(session, ticket.id, note, kind="note")
        tickets.record_event(session, ticket.id, "note" if kind == "note" else "agent_reply",
                             agent=agent.lower(), via="cli")
        session.commit()
    return kind
