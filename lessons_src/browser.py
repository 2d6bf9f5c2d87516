"""Headless Chromium driving JupyterLab: where the browser is, how it starts, and what a page reports of a notebook."""

from __future__ import annotations

import os
import shutil

CHROMIUM = os.environ.get("COURSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Executed in JupyterLab's page: every code cell has run, and only cells tagged raises-exception hold an error.
NOTEBOOK_REPORT = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = [...panel.content.model.cells].filter(c => c.type === 'code');
  const unrun = cells.filter(c => c.executionCount === null).length;
  const unplanned = cells.filter(c => c.outputs.toJSON().some(o => o.output_type === 'error')
      && !(c.getMetadata('tags') || []).includes('raises-exception')).map(c => c.sharedModel.source.slice(0, 60));
  const images = panel.content.node.querySelectorAll('.jp-RenderedImage img').length;
  return {cells: cells.length, unrun, unplanned, images, busy: panel.sessionContext.kernelDisplayStatus};
}"""
# True once JupyterLab has opened a notebook whose kernel is idle.
KERNEL_IDLE = """() => window.jupyterapp && window.jupyterapp.shell.currentWidget
  && window.jupyterapp.shell.currentWidget.sessionContext
  && window.jupyterapp.shell.currentWidget.sessionContext.kernelDisplayStatus === 'idle'"""
