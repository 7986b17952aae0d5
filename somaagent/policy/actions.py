"""The sensitive actions that ask the policy (SPEC §10)."""

CONVERSATION_SEND = "conversation.send"
TOOL_EXECUTE = "tool.execute"
MEMORY_WRITE = "memory.write"
ATTACHMENTS_UPLOAD = "attachments.upload"
SETTINGS_UPDATE = "settings.update"

ACTIONS = (CONVERSATION_SEND, TOOL_EXECUTE, MEMORY_WRITE, ATTACHMENTS_UPLOAD, SETTINGS_UPDATE)
