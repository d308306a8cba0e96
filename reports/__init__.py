"""Reports: results directories -> pandas tables, matplotlib figures, one HTML file and Markdown.

- ``data``     reads results directories (either engine) into tables;
- ``figures``  the plots a reader needs to see why ``individual`` fails and what ``batched`` fixes;
- ``render``   the headline table and the figures as ``report.html`` (self-contained) and ``report.md``.
"""
