"""Autoscaling bench: demand traces replayed against an emulated HPA under each floor policy."""
