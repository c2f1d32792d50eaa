"""The customer panel: who is signed in (auth), what opens it (credentials: links, codes, passwords), the loaders
that take the signed-in customer (loaders), the notices it sends (notices) and what a customer writes
(conversation). Its pages are in app/panel_pages. As a channel of delivery the panel keeps its stored name,
"portal" (Message.channel, Delivery.channel, the API's channel lists)."""
