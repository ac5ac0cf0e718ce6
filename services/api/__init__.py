"""The HTTP front (Falcon under gunicorn): public /pay_invoice, admin routes, health, metrics."""
