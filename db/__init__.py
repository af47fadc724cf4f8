"""Database layer: one declarative Base, the engine and session_scope(), models per schema."""
