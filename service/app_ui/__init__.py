"""What a person sees in a browser: the front door (``GET /``), and later the clinician app under ``/app/``.

Pages are static files of this package plus small server-rendered HTML, served under a strict
Content-Security-Policy (no inline script or style, nothing from another origin), so they work inside a
closed hospital network.
"""
