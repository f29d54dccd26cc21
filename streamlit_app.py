"""sesame's review UI: `streamlit run streamlit_app.py` (the pages live in app/ui/)."""

from app.ui.app import main

main()
