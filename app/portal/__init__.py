"""The customer panel: who is signed in (access), the notices it sends (notices), the shop's branding, and what
a customer writes (conversation). Its pages are in app/panel_pages."""
