"""The customer panel: who is signed in and with what (access: sessions, links, codes, passwords, the loaders
that take the signed-in customer), the notices it sends (notices) and what a customer writes (conversation).
Its pages are in app/panel_pages; the blueprint keeps its name, "portal", and the addresses stay /p/<slug>/..."""
