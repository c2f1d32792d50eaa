"""The data model, one module per aggregate; importing this package registers every table."""
from .audit import AuditEvent
from .conversations import (
    PREVIEW_CHARS, Attachment, Message, MessageRef, Tag, Thread, ThreadFollower, ThreadPresence, preview_of,
)
from .customers import ConsentEvent, ContactPerson, Customer, CustomerEmail, PanelToken
from .deliveries import Delivery, DeliveryEvent
from .files import KeptDraft, StoredBlob, StoredBlobChunk
from .inbound import InboundItem, Lease
from .mailboxes import Mailbox, OAuthClient, SmsAccount
from .repairs import Repair, RepairEvent, Ticket
from .requests import WebRequest
from .rules import MailRule
from .sessions import SignInSession
from .shop import NumberSequence, Queue, RepairStatus, Shop, ShopSlug, TrustedDomain
from .templates import MessageTemplate, SentReminder, StatusNotification, StatusReminder, TemplateAttachment
from .types import utcnow
from .users import ApiToken, User

__all__ = [
    "ApiToken", "Attachment", "AuditEvent", "ConsentEvent", "ContactPerson", "Customer", "CustomerEmail", "Delivery",
    "DeliveryEvent", "InboundItem", "KeptDraft", "Lease", "MailRule", "Mailbox", "Message", "MessageRef",
    "MessageTemplate", "NumberSequence", "OAuthClient", "PanelToken", "Queue", "Repair", "RepairEvent", "RepairStatus",
    "Shop", "ShopSlug", "SentReminder", "SignInSession", "SmsAccount", "StatusNotification", "StatusReminder",
    "StoredBlob", "StoredBlobChunk", "Tag", "TemplateAttachment", "Thread", "ThreadFollower", "ThreadPresence",
    "Ticket", "TrustedDomain", "User", "WebRequest", "utcnow",
]
