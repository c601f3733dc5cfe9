CREATE DATABASE castmatch OWNER airflow;
