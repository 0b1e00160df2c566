from django import forms

from workers.curation.config import METRICS, STRATEGIES


class ClusteringForm(forms.Form):
    n_neighbors = forms.IntegerField(min_value=2, max_value=200, initial=15, help_text="UMAP neighbourhood size")
    min_dist = forms.FloatField(min_value=0.0, max_value=1.0, initial=0.1, help_text="UMAP minimum distance")
    metric = forms.ChoiceField(choices=[(m, m) for m in METRICS], initial="cosine")
    seed = forms.IntegerField(min_value=0, initial=42)
    min_cluster_size = forms.IntegerField(min_value=2, initial=5, help_text="HDBSCAN")
    min_samples = forms.IntegerField(min_value=1, required=False, help_text="HDBSCAN; empty = min cluster size")


class GoldSampleForm(forms.Form):
    strategy = forms.ChoiceField(choices=[(s, s) for s in STRATEGIES], initial="centroid")
    seed = forms.IntegerField(min_value=0, initial=0)
    noise_picks = forms.IntegerField(min_value=0, initial=0, help_text="extra frames from noise")
    target_size = forms.IntegerField(min_value=1, required=False, help_text="empty = one per cluster")
