"""llmdocs as a Model Context Protocol server: documents, prompts and generation as MCP
tools, resources and prompts, over stdio (`llmdocs mcp`) and streamable HTTP (`/mcp`)."""
