"""Incident notifiers (Alertmanager, PagerDuty, webhook, OTLP event, console) and their delivery queue.

Import the one you need, e.g. `from otelpipe.exporters.alertmanager import AlertmanagerNotifier`;
this package imports nothing itself so that loading one notifier never loads the others.
"""
