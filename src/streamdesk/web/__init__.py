"""The HTTP plumbing every package's routes use: authentication and the route gate, request dependencies, the
error answers, security headers and the API settings. It imports no package that has routes; `api.app` gathers them.
"""
