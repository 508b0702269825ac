"""What the HTTP blueprints share (the service's own and the clinician app's): settings and public URL,
token checks, audit recording, response helpers. Below every blueprint; no blueprint imports another.
"""
