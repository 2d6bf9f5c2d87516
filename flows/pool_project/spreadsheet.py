"""A flow whose module needs a package the course does not install: its runs crash on a worker without it."""

import xlsxwriter  # not installed in the course's environment: the worker's flow-run process cannot import this file
from prefect import flow


@flow
def export_spreadsheet(rows: int = 3) -> str:
    """Write a small spreadsheet (never reached here: the import above fails first)."""
    workbook = xlsxwriter.Workbook("report.xlsx")
    workbook.close()
    return f"{rows} rows"
