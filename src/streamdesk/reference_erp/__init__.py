"""The reference command consumer: an ERP-like PostgreSQL schema that applies `command.erp` and emits Debezium CDC."""
