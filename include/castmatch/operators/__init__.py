"""Airflow operators of CastMatch: where Airflow meets the config, the LLM layer and the store."""
