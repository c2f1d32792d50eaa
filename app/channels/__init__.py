"""Delivery channels (e-mail, SMS, customer panel), each able to say whether it can reach a customer and send."""
