"""SMPP 3.4 connections (SPEC §12): pdu (codec), session (one bind), submit (parts, TON/NPI),
receipts (matching and multi-part settling), connection (the Connection port)."""

from pombo.adapters.connections.smpp.connection import SmppConnection, SmppHooks

__all__ = ["SmppConnection", "SmppHooks"]
