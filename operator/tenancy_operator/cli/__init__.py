"""`kubectl tenant`: the kubectl plugin (console script `kubectl-tenant`).

`render` turns Tenant objects into text and is pure; `kubeapi` talks to the API server through
`kubectl`, so the plugin uses the same kubeconfig, context and credentials plugins as kubectl does;
`main` parses the command line.
"""

__all__ = ["kubeapi", "main", "render"]
